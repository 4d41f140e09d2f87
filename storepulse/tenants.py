"""The tenant registry (``ops.tenants``): onboarding, listing and removal."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storepulse.errors import StorePulseError

SLUG = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    timezone: str
    currency: str
    country_code: str


def validate_tenant(tenant: Tenant) -> None:
    if not SLUG.match(tenant.tenant_id):
        raise StorePulseError(f"tenant slug {tenant.tenant_id!r} must be lowercase letters, "
                              "digits and underscores, starting with a letter (2-41 chars)")
    try:
        ZoneInfo(tenant.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise StorePulseError(f"unknown time zone {tenant.timezone!r} "
                              "(use an IANA name such as Europe/London)") from None
    if not re.fullmatch(r"[A-Z]{3}", tenant.currency):
        raise StorePulseError(f"currency {tenant.currency!r} must be an ISO 4217 code like EUR")
    if not re.fullmatch(r"[A-Z]{2}", tenant.country_code):
        raise StorePulseError(f"country {tenant.country_code!r} must be an ISO 3166 code like GB")


def add_tenant(engine: Engine, tenant: Tenant, landing_dir: Path | None = None) -> bool:
    """Register ``tenant``; returns False when it already existed (then nothing changes)."""
    validate_tenant(tenant)
    with engine.begin() as conn:
        inserted = conn.execute(sa.text(
            "insert into ops.tenants (tenant_id, name, timezone, currency, country_code) "
            "values (:id, :name, :tz, :cur, :cc) on conflict (tenant_id) do nothing "
            "returning tenant_id"),
            {"id": tenant.tenant_id, "name": tenant.name, "tz": tenant.timezone,
             "cur": tenant.currency, "cc": tenant.country_code}).first()
        if inserted:
            conn.execute(sa.text(
                "insert into ops.audit_log (action, tenant_id, details) values "
                "('tenant_add', :id, jsonb_build_object('name', cast(:name as text)))"),
                {"id": tenant.tenant_id, "name": tenant.name})
    if landing_dir is not None:
        (landing_dir / tenant.tenant_id).mkdir(parents=True, exist_ok=True)
    return inserted is not None


def list_tenants(engine: Engine) -> list[Tenant]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "select tenant_id, name, timezone, currency, country_code from ops.tenants "
            "order by tenant_id")).all()
    return [Tenant(*row) for row in rows]


def get_tenant(engine: Engine, tenant_id: str) -> Tenant:
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "select tenant_id, name, timezone, currency, country_code from ops.tenants "
            "where tenant_id = :t"), {"t": tenant_id}).first()
    if row is None:
        raise StorePulseError(f"tenant '{tenant_id}' is not registered")
    return Tenant(*row)
