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
    graph = state.data_graph["groups"]
    north, acme = groups["StorePulse tenant northwind"], groups["StorePulse tenant acme_grocers"]
    assert graph[north][dbs["StorePulse northwind"]]["view-data"] == "unrestricted"
    assert graph[acme][dbs["StorePulse northwind"]] == {"view-data": "blocked",
                                                         "create-queries": "no"}
    assert graph[north][dbs["StorePulse platform"]]["view-data"] == "blocked"
    all_users = groups["All Users"]
    assert all(graph[all_users][db]["view-data"] == "blocked" for db in dbs.values())
    collections = {c["name"]: str(c["id"]) for c in state.collections.values()}
    cgraph = state.collection_graph["groups"]
    assert cgraph[acme][collections["Northwind (StorePulse)"]] == "none"
    assert cgraph[acme][collections["Acme Grocers (StorePulse)"]] == "read"
    # Metabase gives All Users the root's grant on new collections; sync takes it back
    assert all(cgraph[all_users][c] == "none" for c in collections.values())
    # the data team's collection is for admins: no group is granted anything there
    team = collections["StorePulse data team"]
    assert all(cgraph[g].get(team, "none") == "none" for g in cgraph)
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
