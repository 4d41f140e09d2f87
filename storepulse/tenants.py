"""The tenant registry: onboarding (row, login role, landing folder), listing and removal.

Each tenant gets a PostgreSQL login role ``<prefix><random token>`` (prefix ``tenant_``
unless ``STOREPULSE_ROLE_PREFIX`` says otherwise; no slug, as every role can list roles) in
the group ``storepulse_tenants``, mapped in ``ops.tenant_roles``; row-level security then
shows that role only its own rows.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import astuple, dataclass, field, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storepulse.errors import StorePulseError
from storepulse.settings import load_settings

SLUG = re.compile(r"[a-z][a-z0-9_]{1,40}")  # fullmatch: "$" would let a final newline by
DEFAULT_ROLE_PREFIX = "tenant_"
# Erasure order: children before parents (quarantine and lines reference the file ledger).
PURGE_LAST = ("raw.ingest_files", "ops.tenant_roles", "ops.tenants")
KEPT_ON_PURGE = ("ops.audit_log",)  # the record that the erasure happened


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str
    timezone: str
    currency: str
    country_code: str


@dataclass
class Onboarded:
    tenant: Tenant
    created: bool
    role: str
    generated_password: str | None = None  # shown once, never stored by StorePulse


@dataclass
class Removed:
    tenant_id: str
    role: str | None
    purged: bool
    counts: dict[str, int] = field(default_factory=dict)


def validate_tenant(tenant: Tenant) -> None:
    if not SLUG.fullmatch(tenant.tenant_id):
        raise StorePulseError(f"tenant slug {tenant.tenant_id!r} must be lowercase letters, "
                              "digits and underscores, starting with a letter (2-41 chars)")
    try:
        ZoneInfo(tenant.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise StorePulseError(f"unknown time zone {tenant.timezone!r} "
                              "(use an IANA name such as Europe/London)") from None
    check_currencies([tenant.currency])
    # The country picks the public-holiday calendar that keeps holidays out of the forecasts'
    # errors and the anomaly alerts: a code no calendar knows would silently mean none.
    if tenant.country_code not in _countries_with_calendars():
        raise StorePulseError(f"country {tenant.country_code!r} is not an ISO 3166 code with a "
                              "public-holiday calendar: use two capital letters, like GB, "
                              "DE or US")


def check_currencies(codes: Iterable[str]) -> None:
    """ISO 4217 codes only: a typo (GPB) would otherwise show in every alert and dashboard."""
    from babel.numbers import list_currencies

    known = list_currencies()
    bad = [code for code in codes if code not in known]
    if bad:
        raise StorePulseError(f"not an ISO 4217 currency code: {', '.join(bad)} (use three "
                              "capital letters, like EUR, GBP or USD)")


def _countries_with_calendars() -> set[str]:
    import holidays

    return {code for code in holidays.list_supported_countries() if len(code) == 2}


def new_role_name(prefix: str = DEFAULT_ROLE_PREFIX) -> str:
    """The prefix and a random token: role names are readable by every role (pg_roles), so
    they must not name the tenant."""
    return f"{prefix}{secrets.token_hex(6)}"


def add_tenant(engine: Engine, tenant: Tenant, landing_dir: Path | None = None,
               password: str | None = None, role_prefix: str | None = None) -> Onboarded:
    """Register ``tenant`` with its login role; idempotent (an existing tenant is unchanged,
    unless a password is given, which is then set on its role)."""
    validate_tenant(tenant)
    generated = None
    with engine.begin() as conn:
        role = conn.execute(sa.text(
            "select role_name from ops.tenant_roles where tenant_id = :t order by role_name "
            "limit 1"), {"t": tenant.tenant_id}).scalar() \
            or new_role_name(role_prefix or load_settings().role_prefix)
        created = conn.execute(sa.text(
            "insert into ops.tenants (tenant_id, name, timezone, currency, country_code) "
            "values (:id, :name, :tz, :cur, :cc) on conflict (tenant_id) do nothing "
            "returning tenant_id"),
            {"id": tenant.tenant_id, "name": tenant.name, "tz": tenant.timezone,
             "cur": tenant.currency, "cc": tenant.country_code}).first() is not None
        role_exists = conn.execute(sa.text("select 1 from pg_roles where rolname = :r"),
                                   {"r": role}).first() is not None
        if not role_exists:
            generated = None if password else secrets.token_urlsafe(18)
            _execute_formatted(conn, "create role %I login password %L in role "
                                     "storepulse_tenants", role, password or generated)
        elif password:
            _execute_formatted(conn, "alter role %I password %L", role, password)
        conn.execute(sa.text(
            "insert into ops.tenant_roles (role_name, tenant_id) values (:r, :t) "
            "on conflict (role_name) do nothing"), {"r": role, "t": tenant.tenant_id})
        # connection, statement, idle-transaction and temp-file limits (migration 0012)
        conn.execute(sa.text("select ops.limit_tenant_role(:r)"), {"r": role})
        if created:
            _audit(conn, "tenant_add", tenant.tenant_id, {"name": tenant.name, "role": role})
    if landing_dir is not None:
        (Path(landing_dir) / tenant.tenant_id).mkdir(parents=True, exist_ok=True)
    return Onboarded(tenant, created, role, generated)


def refuse_other_details(engine: Engine, wanted: Tenant) -> None:
    """Onboarding a registered tenant again with other details would keep the old ones
    (add_tenant leaves an existing tenant unchanged): say which differ instead."""
    try:
        existing = get_tenant(engine, wanted.tenant_id)
    except StorePulseError:
        return  # a new tenant
    differ = [f"{f.name} {old!r} (given {new!r})"
              for f, old, new in zip(fields(existing), astuple(existing), astuple(wanted),
                                     strict=True) if old != new]
    if differ:
        raise StorePulseError(f"tenant {wanted.tenant_id} is already registered with "
                              f"{'; '.join(differ)}; nothing changed")


def remove_tenant(engine: Engine, tenant_id: str, purge: bool = False,
                  landing_dir: Path | None = None, plots_dir: Path | None = None) -> Removed:
    """Drop the tenant's role; with ``purge``, delete its rows everywhere (GDPR erasure) and
    its landing folder under ``landing_dir`` and its forecast plots under ``plots_dir`` (they
    draw its revenue). The database part is one transaction: either
    all of it happens or none. Whatever the role owns in other databases of the server (a
    large object, say) is dropped first, so nothing there can stop the erasure."""
    _drop_owned_elsewhere(engine, tenant_id)
    with engine.begin() as conn:
        if conn.execute(sa.text("select 1 from ops.tenants where tenant_id = :t"),
                        {"t": tenant_id}).first() is None:
            raise StorePulseError(f"tenant '{tenant_id}' is not registered")
        roles = conn.execute(sa.text("select role_name from ops.tenant_roles where "
                                     "tenant_id = :t"), {"t": tenant_id}).scalars().all()
        tables = _tenant_tables(conn)
        before = _counts(conn, tables, tenant_id)
        for role in roles:
            conn.execute(sa.text("delete from ops.tenant_roles where role_name = :r"),
                         {"r": role})
            if conn.execute(sa.text("select 1 from pg_roles where rolname = :r"),
                            {"r": role}).first():
                _execute_formatted(conn, "drop owned by %I", role)
                _execute_formatted(conn, "drop role %I", role)
        if purge:
            ordered = [t for t in tables if t not in PURGE_LAST and t not in KEPT_ON_PURGE]
            for table in [*ordered, *[t for t in PURGE_LAST if t in tables]]:
                conn.execute(sa.text(f"delete from {table} where tenant_id = :t"),
                             {"t": tenant_id})
        after = _counts(conn, tables, tenant_id)
        _audit(conn, "tenant_purge" if purge else "tenant_remove", tenant_id,
               {"roles": roles}, before, after)
    counts = {t: before[t] - after[t] for t in tables if before[t] != after[t]}
    for folder in (landing_dir, plots_dir) if purge else ():
        if folder is not None:
            shutil.rmtree(Path(folder) / tenant_id, ignore_errors=True)
    return Removed(tenant_id, roles[0] if roles else None, purge, counts)


def _drop_owned_elsewhere(engine: Engine, tenant_id: str) -> None:
    """DROP OWNED works in the current database only: visit every other database where the
    tenant's roles own or were granted something (pg_shdepend is cluster-wide)."""
    with engine.connect() as conn:
        elsewhere = conn.execute(sa.text(
            "select distinct d.datname, r.rolname from pg_shdepend s "
            "join pg_roles r on r.oid = s.refobjid "
            "join pg_database d on d.oid = s.dbid "
            "join ops.tenant_roles t on t.role_name = r.rolname "
            "where t.tenant_id = :t and s.refclassid = 'pg_authid'::regclass "
            "and d.datname <> current_database()"), {"t": tenant_id}).all()
    for database, role in elsewhere:
        other = sa.create_engine(engine.url.set(database=database), poolclass=sa.pool.NullPool)
        try:
            with other.begin() as conn:
                _execute_formatted(conn, "drop owned by %I", role)
        finally:
            other.dispose()


def tenant_role(engine: Engine, tenant_id: str) -> str:
    with engine.connect() as conn:
        role = conn.execute(sa.text("select role_name from ops.tenant_roles where tenant_id = :t "
                                    "order by role_name limit 1"), {"t": tenant_id}).scalar()
    if role is None:
        raise StorePulseError(f"tenant '{tenant_id}' has no database role; run "
                              f"`storepulse tenants add {tenant_id}` first")
    return role


def set_tenant_password(engine: Engine, tenant_id: str, password: str) -> str:
    """Set the password of the tenant's login role (its Metabase connection logs in with it);
    returns the role name."""
    role = tenant_role(engine, tenant_id)
    with engine.begin() as conn:
        _execute_formatted(conn, "alter role %I password %L", role, password)
    return role


def set_native_sql(engine: Engine, tenant_id: str, enabled: bool) -> None:
    """Allow (or stop) native SQL for the tenant's Metabase group; the next dashboards sync
    applies it."""
    get_tenant(engine, tenant_id)
    with engine.begin() as conn:
        conn.execute(sa.text("update ops.tenants set metabase_native_sql = :on "
                             "where tenant_id = :t"), {"on": enabled, "t": tenant_id})
        _audit(conn, "tenant_native_sql", tenant_id, {"enabled": enabled})


@dataclass(frozen=True)
class GateLimits:
    """What the raw quality gate accepts from a tenant (quality/suites.py)."""

    max_unit_price: float
    accepted_currencies: tuple[str, ...]  # empty: the tenant's own currency only


def set_gate_limits(engine: Engine, tenant_id: str, max_unit_price: float | None = None,
                    accepted_currencies: tuple[str, ...] | None = None) -> GateLimits:
    """Change the gate's limits for a tenant (only those given; none: just read them),
    audited with before and after."""
    get_tenant(engine, tenant_id)
    if max_unit_price is not None and not max_unit_price > 0:
        raise StorePulseError(f"--max-unit-price must be above 0 (got {max_unit_price:g})")
    check_currencies(accepted_currencies or ())
    with engine.begin() as conn:
        before = _gate_limits(conn, tenant_id)
        if max_unit_price is None and accepted_currencies is None:
            return before  # only shown
        conn.execute(sa.text(
            "update ops.tenants set max_unit_price = coalesce(:p, max_unit_price), "
            "accepted_currencies = case when :set_c then cast(:c as text[]) "
            "else accepted_currencies end where tenant_id = :t"),
            {"p": max_unit_price, "set_c": accepted_currencies is not None,
             "c": list(accepted_currencies or []) or None, "t": tenant_id})
        after = _gate_limits(conn, tenant_id)
        _audit(conn, "tenant_gate_limits", tenant_id, {"before": before.__dict__,
                                                       "after": after.__dict__})
    return after


def _gate_limits(conn: sa.Connection, tenant_id: str) -> GateLimits:
    price, currencies = conn.execute(sa.text(
        "select max_unit_price, accepted_currencies from ops.tenants where tenant_id = :t"),
        {"t": tenant_id}).one()
    return GateLimits(float(price), tuple(currencies or ()))


def native_sql_tenants(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            "select tenant_id from ops.tenants where metabase_native_sql")).scalars())


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


def record_manual_ingest(engine: Engine, result) -> None:
    """Audit a load started by a person (``storepulse ingest``), with its row counts."""
    with engine.begin() as conn:
        _audit(conn, "manual_ingest", result.tenant_id,
               {"file": str(result.path), "status": result.status, "file_id": result.file_id},
               None, {"rows_read": result.rows_read, "rows_loaded": result.rows_loaded,
                      "rows_quarantined": result.rows_quarantined})


def _execute_formatted(conn: sa.Connection, template: str, *args: str) -> None:
    """DDL cannot take bind parameters; PostgreSQL's format() quotes names and literals."""
    placeholders = ", ".join(f"cast(:a{i} as text)" for i in range(len(args)))
    statement = conn.execute(sa.text(f"select format('{template}', {placeholders})"),
                             {f"a{i}": a for i, a in enumerate(args)}).scalar_one()
    conn.connection.driver_connection.cursor().execute(statement)


def _tenant_tables(conn: sa.Connection) -> list[str]:
    return conn.execute(sa.text(
        "select c.table_schema || '.' || c.table_name from information_schema.columns c "
        "join information_schema.tables t using (table_schema, table_name) "
        "where c.column_name = 'tenant_id' and t.table_type = 'BASE TABLE' "
        "and c.table_schema in ('raw', 'marts', 'ml', 'ops') order by 1")).scalars().all()


def _counts(conn: sa.Connection, tables: list[str], tenant_id: str) -> dict[str, int]:
    return {t: conn.execute(sa.text(f"select count(*) from {t} where tenant_id = :t"),
                            {"t": tenant_id}).scalar_one() for t in tables}


def _audit(conn: sa.Connection, action: str, tenant_id: str, details: dict,
           before: dict | None = None, after: dict | None = None) -> None:
    import json

    conn.execute(sa.text(
        "insert into ops.audit_log (action, tenant_id, details, before_counts, after_counts) "
        "values (:a, :t, cast(:d as jsonb), cast(:b as jsonb), cast(:f as jsonb))"),
        {"a": action, "t": tenant_id, "d": json.dumps(details),
         "b": json.dumps(before) if before is not None else None,
         "f": json.dumps(after) if after is not None else None})
