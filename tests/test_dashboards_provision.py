"""The provisioner against a local server speaking Metabase's REST API over real HTTP."""

import dataclasses

import pytest

from dashboards.provision import (
    DATA_TEAM_SPACE,
    Connection,
    MetabaseApi,
    MetabaseError,
    Provisioner,
    Space,
)
from dashboards.specs import load_specs
from tests.metabase_server import MetabaseServer

TENANTS = ("northwind", "acme_grocers")


def spaces() -> list[Space]:
    result = [Space(t, t.replace("_", " ").title(),
                    Connection(f"StorePulse {t}", "postgres", 5432, "storepulse", f"tenant_{t}",
                               f"pw-{t}"))
              for t in TENANTS]
    result.append(Space(DATA_TEAM_SPACE, "Data team",
                        Connection("StorePulse platform", "postgres", 5432, "storepulse",
                                   "storepulse", "platform-pw")))
    return result


@pytest.fixture
def metabase():
    with MetabaseServer() as server:
        yield server


def sync(metabase, specs=None, prune=False, dry_run=False, only=None):
    api = MetabaseApi(metabase.url, metabase.state.email, metabase.state.password,
                      dry_run=dry_run)
    chosen = [s for s in spaces() if only is None or s.key in only]
    return Provisioner(api, specs or load_specs()).sync(chosen, prune=prune)


def test_first_sync_builds_an_isolated_space_per_tenant(metabase):
    specs = load_specs()
    report = sync(metabase)
    state = metabase.state
    assert {d["name"] for d in state.databases.values()} == {
        "StorePulse northwind", "StorePulse acme_grocers", "StorePulse platform"}
    tenant_specs = [s for s in specs if s.audience == "tenant"]
    health = [s for s in specs if s.audience == "data_team"]
    expected_cards = 2 * sum(len(s.cards) for s in tenant_specs) + sum(len(s.cards)
                                                                       for s in health)
    assert len(state.cards) == expected_cards
    assert len(state.dashboards) == 2 * len(tenant_specs) + len(health)
    for dashboard in state.dashboards.values():
        assert dashboard["dashcards"], dashboard["name"]
        parameters = {p["id"] for p in dashboard["parameters"]}
        for dashcard in dashboard["dashcards"]:
            card = state.cards[dashcard["card_id"]]
            assert card["collection_id"] == dashboard["collection_id"]
            tags = set(card["dataset_query"]["native"]["template-tags"])
            assert {m["parameter_id"] for m in dashcard["parameter_mappings"]} == tags
            assert tags <= parameters
    assert report.changes > 0 and report.unmanaged_cards == []

    groups = {g["name"]: str(g["id"]) for g in state.groups.values()}
    dbs = {d["name"]: str(d["id"]) for d in state.databases.values()}
    graph = state.data_graph()["groups"]
    north, acme = groups["StorePulse tenant northwind"], groups["StorePulse tenant acme_grocers"]
    # open-source Metabase: no "blocked"; isolation is "no query creation" (Metabase leaves
    # create-queries out of the graph when it is "no")
    assert graph[north][dbs["StorePulse northwind"]] == {"view-data": "unrestricted",
                                                          "create-queries": "query-builder"}
    assert graph[acme][dbs["StorePulse northwind"]] == {"view-data": "unrestricted"}
    assert graph[north][dbs["StorePulse platform"]] == {"view-data": "unrestricted"}
    all_users = groups["All Users"]
    # a new database gives All Users native SQL on it; sync takes it back on every one
    assert all(graph[all_users][db] == {"view-data": "unrestricted"} for db in dbs.values())
    collections = {c["name"]: str(c["id"]) for c in state.collections.values()}
    cgraph = state.collection_graph()["groups"]
    assert cgraph[acme][collections["Northwind (StorePulse)"]] == "none"
    assert cgraph[acme][collections["Acme Grocers (StorePulse)"]] == "read"
    # Metabase gives All Users the root's grant on new collections; sync takes it back
    assert all(cgraph[all_users][c] == "none" for c in collections.values())
    # the data team's collection is for admins: no other group is granted anything there
    team = collections["StorePulse data team"]
    assert all(cgraph[g].get(team, "none") == "none" for g in cgraph
               if g != groups["Administrators"])
    # each tenant's connection logs in as its own role
    assert {d["details"]["user"] for d in state.databases.values()} == {
        "tenant_northwind", "tenant_acme_grocers", "storepulse"}


def test_second_sync_changes_nothing(metabase):
    sync(metabase)
    writes = len(metabase.state.writes)
    again = sync(metabase)
    assert again.changes == 0, again.actions
    assert len(metabase.state.writes) == writes


def test_spec_change_updates_the_card_in_place(metabase):
    specs = load_specs()
    sync(metabase, specs)
    before = {c["id"]: c["name"] for c in metabase.state.cards.values()}
    store = next(s for s in specs if s.key == "store_performance")
    card = next(c for c in store.cards if c.key == "net_revenue")
    changed_card = dataclasses.replace(card, name="Net revenue (after returns)",
                                       sql=card.sql.replace("round(sum(kpis.net_revenue), 2)",
                                                            "round(sum(kpis.net_revenue), 0)"))
    changed = dataclasses.replace(store, cards=tuple(
        changed_card if c.key == "net_revenue" else c for c in store.cards))
    report = sync(metabase, [changed if s.key == store.key else s for s in specs])
    assert sorted(report.actions) == [
        "update acme_grocers: card store_performance/net_revenue (dataset_query, name)",
        "update northwind: card store_performance/net_revenue (dataset_query, name)"]
    after = {c["id"]: c["name"] for c in metabase.state.cards.values()}
    assert set(after) == set(before)  # same ids: updated, not recreated
    renamed = [i for i in after if after[i] != before[i]]
    assert len(renamed) == 2 and all(after[i] == "Net revenue (after returns)" for i in renamed)


def test_cards_missing_from_specs_are_reported_and_pruned_only_on_request(metabase):
    specs = load_specs()
    sync(metabase, specs)
    products = next(s for s in specs if s.key == "products")
    fewer = dataclasses.replace(products, cards=products.cards[:-1])
    trimmed = [fewer if s.key == "products" else s for s in specs]
    report = sync(metabase, trimmed)
    assert len(report.unmanaged_cards) == 2
    assert not any(c["archived"] for c in metabase.state.cards.values())
    pruned = sync(metabase, trimmed, prune=True)
    assert sum(c["archived"] for c in metabase.state.cards.values()) == 2
    assert len([a for a in pruned.actions if a.startswith("archive")]) == 2


def test_dry_run_writes_nothing(metabase):
    report = sync(metabase, dry_run=True)
    assert report.dry_run and report.changes > 0
    assert metabase.state.writes == []
    assert any(a.startswith("create database connection") for a in report.actions)


def test_one_tenant_only_and_a_wrong_password(metabase):
    report = sync(metabase, only={"northwind"})
    assert {d["name"] for d in metabase.state.databases.values()} == {"StorePulse northwind"}
    assert report.changes > 0
    with pytest.raises(MetabaseError, match="cannot log in"):
        MetabaseApi(metabase.url, metabase.state.email, "wrong")


def test_server_rejects_what_metabase_rejects(metabase):
    api = MetabaseApi(metabase.url, metabase.state.email, metabase.state.password)
    with pytest.raises(MetabaseError, match="400"):
        api.post("/api/card", {"name": "no query", "display": "table"})
    with pytest.raises(MetabaseError, match="404"):
        api.post("/api/dashboard/1/cards", {"cardId": 1})
    # open-source Metabase: "blocked" is a paid feature, and a stale revision is refused
    sync(metabase)
    graph = api.get("/api/permissions/graph")
    group, db = next(iter(graph["groups"])), next(iter(metabase.state.databases))
    with pytest.raises(MetabaseError, match=r"402.*premium token"):
        api.put("/api/permissions/graph", {"revision": graph["revision"], "groups": {
            group: {str(db): {"view-data": "blocked", "create-queries": "no"}}}})
    with pytest.raises(MetabaseError, match="400"):
        api.put("/api/permissions/graph", {"revision": graph["revision"], "groups": {
            group: {str(db): {"view-data": "unrestricted", "create-queries": "all"}}}})
    api.put("/api/permissions/graph", {"revision": graph["revision"], "groups": {}})
    with pytest.raises(MetabaseError, match="409"):
        api.put("/api/permissions/graph", {"revision": graph["revision"], "groups": {}})


def _manager_of(metabase, tenant: str) -> MetabaseApi:
    """A store manager of ``tenant``: a plain user in the tenant's group, logged in."""
    admin = MetabaseApi(metabase.url, metabase.state.email, metabase.state.password)
    group = next(g["id"] for g in admin.get("/api/permissions/group")
                 if g["name"] == f"StorePulse tenant {tenant}")
    email = f"manager@{tenant}.test"
    user = admin.post("/api/user", {"first_name": "Store", "last_name": "Manager",
                                    "email": email, "password": "Manager-pass-1"})
    admin.post("/api/permissions/membership", {"group_id": group, "user_id": user["id"]})
    return MetabaseApi(metabase.url, email, "Manager-pass-1")


def _ids(metabase, tenant: str) -> dict[str, object]:
    state = metabase.state
    collection = next(c["id"] for c in state.collections.values()
                      if c["description"] and f"[storepulse:{tenant}:" in c["description"])
    return {"database": next(d["id"] for d in state.databases.values()
                             if d["name"] == f"StorePulse {tenant}"),
            "collection": collection,
            "dashboards": [d["id"] for d in state.dashboards.values()
                           if d["collection_id"] == collection],
            "cards": [c["id"] for c in state.cards.values() if c["collection_id"] == collection]}


def _refused(call, *args) -> bool:
    try:
        call(*args)
    except MetabaseError as exc:
        return "HTTP 403" in str(exc)
    return False


def test_a_tenants_manager_reaches_only_their_own_space(metabase):
    sync(metabase)
    north, acme = _ids(metabase, "northwind"), _ids(metabase, "acme_grocers")
    team = next(c["id"] for c in metabase.state.collections.values()
                if c["name"] == "StorePulse data team")
    manager = _manager_of(metabase, "northwind")

    # their own space works
    listed = {c["id"] for c in manager.get("/api/collection")}
    assert listed == {"root", north["collection"]}
    assert manager.get(f"/api/dashboard/{north['dashboards'][0]}")["id"]
    assert manager.post(f"/api/card/{north['cards'][0]}/query", {})["status"] == "completed"
    assert {d["id"] for d in manager.get("/api/database")["data"]} == {north["database"]}
    assert manager.post("/api/dataset", {"database": north["database"], "type": "query",
                                         "query": {"source-table": 1}})["status"]
    assert {c["id"] for c in manager.get("/api/card", f="all")} == set(north["cards"])

    # nothing of the other tenant's, nor of the data team's
    assert _refused(manager.get, f"/api/collection/{acme['collection']}")
    assert _refused(manager.get, f"/api/collection/{acme['collection']}/items")
    assert _refused(manager.get, f"/api/collection/{team}")
    assert all(_refused(manager.get, f"/api/dashboard/{d}") for d in acme["dashboards"])
    assert all(_refused(manager.get, f"/api/card/{c}") for c in acme["cards"])
    assert all(_refused(manager.post, f"/api/card/{c}/query", {}) for c in acme["cards"])
    assert _refused(manager.get, f"/api/database/{acme['database']}")
    for kind in ("query", "native"):
        assert _refused(manager.post, "/api/dataset", {
            "database": acme["database"], "type": kind, "native": {"query": "select 1"}})
    # native SQL is off by default, even on their own database
    assert _refused(manager.post, "/api/dataset", {
        "database": north["database"], "type": "native", "native": {"query": "select 1"}})
    # and they cannot grant themselves anything
    assert _refused(manager.get, "/api/permissions/graph")
    assert _refused(manager.get, "/api/collection/graph")


def test_native_sql_is_an_explicit_per_tenant_option(metabase):
    sync(metabase)
    manager = _manager_of(metabase, "northwind")
    north, acme = _ids(metabase, "northwind"), _ids(metabase, "acme_grocers")
    native = {"type": "native", "native": {"query": "select 1"}}

    def with_native(on: bool) -> list[Space]:
        return [dataclasses.replace(s, native_sql=on and s.key == "northwind") for s in spaces()]

    api = MetabaseApi(metabase.url, metabase.state.email, metabase.state.password)
    report = Provisioner(api, load_specs()).sync(with_native(True))
    assert report.actions == ["update data permissions for groups "
                              f"{[str(_group(metabase, 'northwind'))]}"]
    assert manager.post("/api/dataset", {"database": north["database"], **native})["status"]
    assert _refused(manager.post, "/api/dataset", {"database": acme["database"], **native})
    Provisioner(api, load_specs()).sync(with_native(False))
    assert _refused(manager.post, "/api/dataset", {"database": north["database"], **native})


def _group(metabase, tenant: str) -> int:
    return next(g["id"] for g in metabase.state.groups.values()
                if g["name"] == f"StorePulse tenant {tenant}")


def test_a_failed_permission_write_stops_before_any_dashboard(metabase):
    """Open-source Metabase refusing a permission write leaves no dashboard or card behind
    in a collection every user can still open."""
    real = metabase.state.data_graph

    def stale():  # someone else edits the permissions between our read and our write
        graph = real()
        metabase.state.data_revision += 1
        return graph

    metabase.state.data_graph = stale
    with pytest.raises(MetabaseError, match="409"):
        sync(metabase)
    assert metabase.state.cards == {} and metabase.state.dashboards == {}


def test_snippets_are_said_once_and_expanded_when_the_spec_loads(tmp_path):
    from dashboards.specs import DashboardSpecError

    specs = {s.key: s for s in load_specs()}
    # every card of the store dashboard starts from the one period definition
    period = [c for c in specs["store_performance"].cards if "with bounds as (" in c.sql]
    assert len(period) == len(specs["store_performance"].cards)
    assert all("snippet" not in c.sql for s in specs.values() for c in s.cards)
    card = ("cards:\n  - key: revenue\n    name: Revenue\n    display: scalar\n"
            "    size: [6, 3]\n    position: [0, 0]\n    field: total\n"
            "    sql: \"select {{snippet: total}} from marts.fct_orders\"\n")
    (tmp_path / "sales.yaml").write_text(
        "key: sales\nname: Sales\naudience: tenant\nsnippets:\n  total: sum(net_amount) as total\n"
        + card)
    (spec,) = load_specs(tmp_path)
    assert spec.cards[0].sql == "select sum(net_amount) as total from marts.fct_orders"
    (tmp_path / "sales.yaml").write_text("key: sales\nname: Sales\naudience: tenant\n" + card)
    with pytest.raises(DashboardSpecError, match="card revenue names snippet 'total'"):
        load_specs(tmp_path)
