"""`storepulse dashboards sync`: the tenants' Metabase spaces from the registry and specs."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from sqlalchemy.engine import URL, Engine

from dashboards.provision import (
    DATA_TEAM_SPACE,
    PLATFORM_CONNECTION,
    TENANT_CONNECTION_PREFIX,
    Connection,
    MetabaseApi,
    Provisioner,
    Space,
    SyncReport,
)
from dashboards.specs import SPEC_DIR, load_specs
from storepulse.errors import StorePulseError
from storepulse.settings import MetabaseSettings
from storepulse.tenants import (
    list_tenants,
    native_sql_tenants,
    set_tenant_password,
    tenant_role,
)


def tenant_db_password(secret: str, tenant_id: str) -> str:
    return hmac.new(secret.encode(), f"metabase:{tenant_id}".encode(),
                    hashlib.sha256).hexdigest()[:40]


def sync_dashboards(engine: Engine, warehouse: URL, settings: MetabaseSettings,
                    tenant_id: str | None = None, dry_run: bool = False,
                    prune: bool = False, specs_dir: Path = SPEC_DIR) -> SyncReport:
    specs = load_specs(specs_dir)  # a broken spec stops the sync before anything changes
    tenants = [t for t in list_tenants(engine) if tenant_id in (None, t.tenant_id)]
    if tenant_id and not tenants:
        raise StorePulseError(f"tenant '{tenant_id}' is not registered")
    host = settings.db_host or warehouse.host or "localhost"
    port = settings.db_port or warehouse.port or 5432
    # Log in first: a sync that cannot reach Metabase must leave every tenant's password as
    # it was (the connections stored there still use it).
    api = MetabaseApi(settings.url, settings.admin_email, settings.admin_password,
                      dry_run=dry_run)
    native_sql = native_sql_tenants(engine)
    spaces = []
    for tenant in tenants:
        password = tenant_db_password(settings.tenant_db_secret, tenant.tenant_id)
        role = (tenant_role(engine, tenant.tenant_id) if dry_run
                else set_tenant_password(engine, tenant.tenant_id, password))
        spaces.append(Space(tenant.tenant_id, tenant.name, Connection(
            f"{TENANT_CONNECTION_PREFIX}{tenant.tenant_id}", host, port, warehouse.database,
            role, password),
            native_sql=tenant.tenant_id in native_sql))
    if tenant_id is None:
        spaces.append(Space(DATA_TEAM_SPACE, "Data team", Connection(
            PLATFORM_CONNECTION, host, port, warehouse.database, warehouse.username or "",
            warehouse.password or "")))
    # Only a sync of every tenant knows which spaces are no one's (`--tenant` sees one).
    return Provisioner(api, specs).sync(spaces, prune=prune, retire_others=tenant_id is None)
