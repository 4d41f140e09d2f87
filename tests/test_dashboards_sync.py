"""`storepulse dashboards sync` and the Dagster asset, against the local Metabase server."""

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from dagster import AssetKey, DagsterInstance, materialize

from dashboards.sync import tenant_db_password
from orchestration.assets.dashboards import metabase_dashboards
from orchestration.resources import WarehouseResource
from storepulse.tenants import tenant_role
from storepulse_cli.commands import cli
from tests.ingestion_helpers import register
from tests.metabase_server import MetabaseServer

SECRET = "0123456789abcdef0123456789abcdef-test"


@pytest.fixture
def metabase(monkeypatch):
    with MetabaseServer() as server:
        monkeypatch.setenv("METABASE_URL", server.url)
        monkeypatch.setenv("METABASE_ADMIN_EMAIL", server.state.email)
        monkeypatch.setenv("METABASE_ADMIN_PASSWORD", server.state.password)
        monkeypatch.setenv("METABASE_TENANT_DB_SECRET", SECRET)
        monkeypatch.setenv("METABASE_DB_HOST", "postgres")
        yield server


def test_cli_sync_is_idempotent_and_uses_each_tenants_role(database_env, engine, metabase):
    register(engine, "shop")
    register(engine, "corner")
    runner = CliRunner()
    dry = runner.invoke(cli, ["dashboards", "sync", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would create database connection StorePulse shop" in dry.output
    assert metabase.state.writes == []

    first = runner.invoke(cli, ["dashboards", "sync"])
    assert first.exit_code == 0, first.output
    databases = {d["name"]: d["details"] for d in metabase.state.databases.values()}
    assert databases["StorePulse shop"]["user"] == tenant_role(engine, "shop")
    assert databases["StorePulse shop"]["host"] == "postgres"
    assert "StorePulse platform" in databases

    second = runner.invoke(cli, ["dashboards", "sync"])
    assert second.output.strip().endswith("no changes"), second.output
    only = runner.invoke(cli, ["dashboards", "sync", "--tenant", "corner"])
    assert only.output.strip().endswith("no changes")
    assert tenant_db_password(SECRET, "shop") != tenant_db_password(SECRET, "corner")


def test_cli_without_metabase_url_says_so(database_env, monkeypatch):
    monkeypatch.delenv("METABASE_URL", raising=False)
    result = CliRunner().invoke(cli, ["dashboards", "sync"])
    assert result.exit_code != 0
    assert "METABASE_URL is not set" in str(result.exception)


def _materialize(database_url):
    resources = {"warehouse": WarehouseResource(
        database_url=database_url.render_as_string(hide_password=False))}
    with DagsterInstance.ephemeral() as instance:
        return materialize([metabase_dashboards], instance=instance, resources=resources)


def test_asset_skips_without_metabase(database_env, engine, monkeypatch):
    monkeypatch.delenv("METABASE_URL", raising=False)
    result = _materialize(database_env)
    assert result.success
    assert result.get_asset_materialization_events() == []


def test_asset_syncs_with_metabase(database_env, engine, metabase):
    register(engine, "shop")
    result = _materialize(database_env)
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == AssetKey(["dashboards", "metabase"])
    assert event.materialization.metadata["changes"].value > 0
    again = _materialize(database_env)
    assert again.get_asset_materialization_events()[0].materialization.metadata[
        "changes"].value == 0


def test_first_time_setup_then_sync(database_env, engine, monkeypatch):
    register(engine, "shop")
    with MetabaseServer(email="nobody@x.test", password="unset", set_up=False) as server:
        for name, value in {"METABASE_URL": server.url, "METABASE_ADMIN_EMAIL": "admin@sp.test",
                            "METABASE_ADMIN_PASSWORD": "Str0ng-pass!",
                            "METABASE_TENANT_DB_SECRET": SECRET}.items():
            monkeypatch.setenv(name, value)
        runner = CliRunner()
        without = runner.invoke(cli, ["dashboards", "sync"])
        assert without.exit_code != 0 and "cannot log in" in str(without.exception)
        done = runner.invoke(cli, ["dashboards", "sync", "--setup"])
        assert done.exit_code == 0, done.output
        assert "Metabase set up with admin admin@sp.test" in done.output
        assert server.state.email == "admin@sp.test" and server.state.set_up
        again = runner.invoke(cli, ["dashboards", "sync", "--setup"])
        assert "set up with" not in again.output and "no changes" in again.output


@pytest.mark.parametrize("secret, says", [
    ("change-me-three", "still the example value"),  # .env.example's
    ("short-but-random-1f3a", "use at least 32"),
])
def test_a_guessable_tenant_secret_is_refused(database_env, engine, metabase, monkeypatch,
                                              secret, says):
    register(engine, "shop")
    monkeypatch.setenv("METABASE_TENANT_DB_SECRET", secret)
    result = CliRunner().invoke(cli, ["dashboards", "sync"])
    assert result.exit_code != 0 and says in str(result.exception)
    assert metabase.state.writes == []


def _password_hash(engine, role: str) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.text("select rolpassword from pg_authid where rolname = :r"),
                            {"r": role}).scalar()


def test_passwords_change_only_after_metabase_accepted_the_login(database_env, engine,
                                                                 metabase, monkeypatch):
    register(engine, "shop")
    role = tenant_role(engine, "shop")
    before = _password_hash(engine, role)
    monkeypatch.setenv("METABASE_ADMIN_PASSWORD", "not-the-admin-password")
    failed = CliRunner().invoke(cli, ["dashboards", "sync"])
    assert failed.exit_code != 0 and "cannot log in" in str(failed.exception)
    assert _password_hash(engine, role) == before
    monkeypatch.setenv("METABASE_ADMIN_PASSWORD", metabase.state.password)
    assert CliRunner().invoke(cli, ["dashboards", "sync"]).exit_code == 0
    assert _password_hash(engine, role) != before


def test_native_sql_is_turned_on_per_tenant_from_the_cli(database_env, engine, metabase):
    register(engine, "shop")
    register(engine, "corner")
    runner = CliRunner()
    assert runner.invoke(cli, ["dashboards", "sync"]).exit_code == 0
    on = runner.invoke(cli, ["tenants", "native-sql", "shop", "--on"])
    assert on.exit_code == 0 and "native SQL in Metabase on" in on.output
    synced = runner.invoke(cli, ["dashboards", "sync"])
    assert "update data permissions" in synced.output
    state = metabase.state
    group = {g["name"]: g["id"] for g in state.groups.values()}
    db = {d["name"]: d["id"] for d in state.databases.values()}
    assert state.data_perms[(group["StorePulse tenant shop"], db["StorePulse shop"])][
        "create-queries"] == "query-builder-and-native"
    assert state.data_perms[(group["StorePulse tenant corner"], db["StorePulse corner"])][
        "create-queries"] == "query-builder"
    unknown = runner.invoke(cli, ["tenants", "native-sql", "nosuch", "--on"])
    assert unknown.exit_code != 0 and "not registered" in str(unknown.exception)


def test_a_purged_tenants_space_is_retired_by_the_next_full_sync(database_env, engine,
                                                                  metabase):
    """Its collection goes to the trash with its dashboards, its group and database
    connection are deleted; other spaces are untouched, and a `--tenant` sync, which sees one
    tenant only, retires nothing."""
    from storepulse.tenants import remove_tenant
    from tests.metabase_server import User

    register(engine, "shop")
    register(engine, "corner")
    runner = CliRunner()
    assert runner.invoke(cli, ["dashboards", "sync"]).exit_code == 0
    state = metabase.state
    group = next(g["id"] for g in state.groups.values()
                 if g["name"] == "StorePulse tenant corner")
    manager = User(state.new_id(), "manager@corner.test", "pw", groups={1, group})
    state.users[manager.id] = manager
    corner_db = next(d["id"] for d in state.databases.values()
                     if d["name"] == "StorePulse corner")
    shop_before = {k: v for k, v in state.cards.items()
                   if v["dataset_query"]["database"] != corner_db}

    remove_tenant(engine, "corner", purge=True)
    only_shop = runner.invoke(cli, ["dashboards", "sync", "--tenant", "shop"])
    assert only_shop.output.strip().endswith("no changes"), only_shop.output
    dry = runner.invoke(cli, ["dashboards", "sync", "--dry-run"])
    assert "would retire corner: delete database connection StorePulse corner" in dry.output
    writes = len(state.writes)

    retired = runner.invoke(cli, ["dashboards", "sync"])
    assert retired.exit_code == 0, retired.output
    assert len(state.writes) > writes
    for action in ("retire corner: archive collection", "retire corner: delete permission "
                   "group StorePulse tenant corner", "retire corner: delete database "
                   "connection StorePulse corner"):
        assert action in retired.output, retired.output
    assert "StorePulse tenant corner" not in {g["name"] for g in state.groups.values()}
    assert group not in manager.groups
    assert corner_db not in state.databases
    assert all(v["dataset_query"]["database"] != corner_db for v in state.cards.values())
    assert [c["name"] for c in state.collections.values() if c["archived"]] == [
        "Corner (StorePulse)"]
    assert {k: v for k, v in state.cards.items()} == shop_before  # shop's cards as they were
    assert "StorePulse shop" in {d["name"] for d in state.databases.values()}
    again = runner.invoke(cli, ["dashboards", "sync"])
    assert again.output.strip().endswith("no changes"), again.output
    # what Metabase refuses here too: the magic groups, and a database for a non-administrator
    from dashboards.provision import MetabaseApi, MetabaseError

    admin = MetabaseApi(metabase.url, state.email, state.password)
    with pytest.raises(MetabaseError, match="HTTP 400: You cannot edit or delete the 'All "
                                            "Users' permissions group!"):
        admin.delete("/api/permissions/group/1")
    shop_db = next(d["id"] for d in state.databases.values() if d["name"] == "StorePulse shop")
    with pytest.raises(MetabaseError, match="HTTP 403"):
        MetabaseApi(metabase.url, manager.email, manager.password).delete(
            f"/api/database/{shop_db}")
