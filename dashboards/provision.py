"""Provision Metabase from the specs, idempotently, one isolated space per tenant.

Per tenant: a Metabase database connection that logs in as the tenant's own PostgreSQL role
(row-level security does the isolation: open-source Metabase has no row sandboxing), a
collection, a permission group that may use only that database and collection, and the
dashboards. For the data team: the platform connection and an admin-only collection with
*Data health*.

Objects carry their identity in a marker (``storepulse:<space>:<dashboard>[:<card>]``) in
their description, so a changed spec updates cards in place, a second sync with no change
writes nothing, and cards that are no longer in the specs are reported (archived only with
``prune``). Cards are placed with ``PUT /api/dashboard/:id`` and its ``dashcards`` list (the
metabase-api client's ``add_card_to_dashboard`` posts to an endpoint Metabase removed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from metabase_api import Metabase_API

from dashboards.specs import CardSpec, DashboardSpec

DATA_TEAM_SPACE = "data_team"
# How this module names a tenant's group and database connection (and the data team's)
TENANT_GROUP_PREFIX = "StorePulse tenant "
TENANT_CONNECTION_PREFIX = "StorePulse "
PLATFORM_CONNECTION = "StorePulse platform"
ALL_USERS = "All Users"
# Data permissions, in what open-source Metabase offers (pinned in docker-compose.yml):
# "blocked" view-data is a paid feature (HTTP 402), so isolation rests on query creation
# (a group without it cannot list, open or query the database) and on collections (a card
# runs on its database only for those who can read its collection). The keys compared and
# sent are these two; Metabase leaves out "create-queries" when it is "no".
NO_QUERIES = {"view-data": "unrestricted", "create-queries": "no"}
QUERY_BUILDER = {"view-data": "unrestricted", "create-queries": "query-builder"}
QUERY_BUILDER_AND_SQL = {"view-data": "unrestricted",
                         "create-queries": "query-builder-and-native"}


class MetabaseError(RuntimeError):
    pass


@dataclass(frozen=True)
class Connection:
    """A PostgreSQL login Metabase will use (a tenant's role, or the platform's)."""

    name: str
    host: str
    port: int
    dbname: str
    user: str
    password: str
    ssl: bool = False

    def details(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "dbname": self.dbname,
                "user": self.user, "password": self.password, "ssl": self.ssl}


@dataclass(frozen=True)
class Space:
    """Where one audience's dashboards live: a tenant, or the data team."""

    key: str  # tenant id, or DATA_TEAM_SPACE
    title: str
    connection: Connection
    # Native SQL on the tenant's own database: off unless the tenant is given it explicitly
    # (SECURITY.md says what it exposes).
    native_sql: bool = False

    @property
    def is_tenant(self) -> bool:
        return self.key != DATA_TEAM_SPACE

    @property
    def group_name(self) -> str:
        return f"{TENANT_GROUP_PREFIX}{self.key}"


@dataclass
class SyncReport:
    actions: list[str] = field(default_factory=list)
    unmanaged_cards: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def changes(self) -> int:
        return len(self.actions)


class MetabaseApi:
    """metabase-api's session handling and requests, with errors raised and a dry-run mode
    that records writes instead of sending them."""

    def __init__(self, url: str, email: str, password: str, dry_run: bool = False) -> None:
        try:
            self.client = Metabase_API(url, email=email, password=password)
        except Exception as exc:  # the client raises a bare Exception(response)
            raise MetabaseError(f"cannot log in to Metabase at {url} as {email}: {exc}") \
                from exc
        self.dry_run = dry_run
        self._fake_id = 0

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, "raw", params=params or None)
        return self._json(response, "GET", path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        if self.dry_run:
            self._fake_id -= 1
            return {**body, "id": self._fake_id}
        return self._json(self.client.post(path, "raw", json=body), "POST", path)

    def put(self, path: str, body: dict[str, Any]) -> Any:
        if self.dry_run:
            return body
        return self._json(self.client.put(path, "raw", json=body), "PUT", path)

    def delete(self, path: str) -> None:
        if not self.dry_run:
            self._json(self.client.delete(path, "raw"), "DELETE", path)

    @staticmethod
    def _json(response: Any, method: str, path: str) -> Any:
        if not response.ok:
            raise MetabaseError(f"Metabase {method} {path}: HTTP {response.status_code}: "
                                f"{response.text[:300]}")
        return response.json() if response.content else None


def _listing(payload: Any) -> list[dict[str, Any]]:
    return payload["data"] if isinstance(payload, dict) and "data" in payload else payload


def _marker(space: str, dashboard: str, card: str | None = None) -> str:
    return f"storepulse:{space}:{dashboard}" + (f":{card}" if card else "")


def _described(text: str, marker: str) -> str:
    return f"{text.strip()}\n\n[{marker}]".strip()


def _space_of(marker: str | None) -> str | None:
    """The space a collection's marker names (``storepulse:<space>:collection``)."""
    if marker and marker.startswith("storepulse:") and marker.endswith(":collection"):
        return marker.removeprefix("storepulse:").removesuffix(":collection")
    return None


def _marker_of(description: str | None) -> str | None:
    if description and description.rstrip().endswith("]") and "[storepulse:" in description:
        return description[description.rindex("[storepulse:") + 1:description.rindex("]")]
    return None


class Provisioner:
    def __init__(self, api: MetabaseApi, specs: list[DashboardSpec]) -> None:
        self.api = api
        self.specs = specs
        self.report = SyncReport(dry_run=api.dry_run)

    def sync(self, spaces: list[Space], prune: bool = False,
             retire_others: bool = False) -> SyncReport:
        """Connections, collections and groups first, then their permissions, and only then
        the dashboards: a new database or collection starts with Metabase's defaults (All
        Users may query the one and curate the other), so nothing is put in either before
        the permissions are right, and a failed permission write stops the sync there.

        With ``retire_others`` (a sync of every registered tenant), the spaces of tenants no
        longer registered (purged) are retired first (``retire_spaces``)."""
        if retire_others:
            self.retire_spaces({space.key for space in spaces})
        groups = {g["name"]: g["id"] for g in self.api.get("/api/permissions/group")}
        placed: dict[str, Placed] = {}
        for space in spaces:
            placed[space.key] = Placed(
                space, self._database(space.connection), self._collection(space),
                self._group(space, groups) if space.is_tenant else None)
        self._permissions(list(placed.values()), groups)
        cards = _listing(self.api.get("/api/card", f="all"))
        for where in placed.values():
            self._dashboards(where.space, where.database_id, where.collection_id, cards, prune)
        return self.report

    def retire_spaces(self, keep: set[str]) -> None:
        """The spaces of tenants not in ``keep``: its collection archived (its dashboards and
        cards go to the trash with it), its permission group deleted (and with it every grant
        and membership), its database connection deleted (it logs in as a role the purge
        dropped). Found by what this module names and marks, so nothing else is touched."""
        for collection in _listing(self.api.get("/api/collection")):
            key = _space_of(_marker_of(collection.get("description")))
            if key and key not in keep and key != DATA_TEAM_SPACE \
                    and not collection.get("archived"):
                self.report.actions.append(f"retire {key}: archive collection "
                                           f"{collection['name']}")
                self.api.put(f"/api/collection/{collection['id']}", {"archived": True})
        for group in self.api.get("/api/permissions/group"):
            key = group["name"].removeprefix(TENANT_GROUP_PREFIX)
            if group["name"].startswith(TENANT_GROUP_PREFIX) and key not in keep:
                self.report.actions.append(f"retire {key}: delete permission group "
                                           f"{group['name']}")
                self.api.delete(f"/api/permissions/group/{group['id']}")
        for database in _listing(self.api.get("/api/database")):
            key = database["name"].removeprefix(TENANT_CONNECTION_PREFIX)
            if database["name"].startswith(TENANT_CONNECTION_PREFIX) \
                    and database["name"] != PLATFORM_CONNECTION and key not in keep:
                self.report.actions.append(f"retire {key}: delete database connection "
                                           f"{database['name']}")
                self.api.delete(f"/api/database/{database['id']}")

    # -- objects ---------------------------------------------------------------------------

    def _database(self, connection: Connection) -> int:
        existing = next((d for d in _listing(self.api.get("/api/database"))
                         if d["name"] == connection.name), None)
        wanted = connection.details()
        if existing is None:
            self.report.actions.append(f"create database connection {connection.name}")
            return self.api.post("/api/database", {
                "engine": "postgres", "name": connection.name, "details": wanted,
                "is_full_sync": True})["id"]
        have = existing.get("details") or {}
        # Metabase never returns the password, so identity is the rest of the details.
        if any(have.get(k) != wanted[k] for k in ("host", "port", "dbname", "user", "ssl")):
            self.report.actions.append(f"update database connection {connection.name}")
            self.api.put(f"/api/database/{existing['id']}",
                         {"name": connection.name, "engine": "postgres", "details": wanted})
        return existing["id"]

    def _collection(self, space: Space) -> int:
        name = f"{space.title} (StorePulse)" if space.is_tenant else "StorePulse data team"
        existing = next((c for c in _listing(self.api.get("/api/collection"))
                         if c.get("name") == name and not c.get("archived")
                         and c.get("personal_owner_id") is None), None)
        if existing is not None:
            return existing["id"]
        self.report.actions.append(f"create collection {name}")
        return self.api.post("/api/collection", {
            "name": name, "parent_id": None,
            "description": _described("Managed by StorePulse (`storepulse dashboards sync`).",
                                      _marker(space.key, "collection"))})["id"]

    def _group(self, space: Space, groups: dict[str, int]) -> int:
        if space.group_name not in groups:
            self.report.actions.append(f"create permission group {space.group_name}")
            groups[space.group_name] = self.api.post("/api/permissions/group",
                                                     {"name": space.group_name})["id"]
        return groups[space.group_name]

    def _dashboards(self, space: Space, db_id: int, collection_id: int,
                    all_cards: list[dict[str, Any]], prune: bool) -> None:
        audience = "tenant" if space.is_tenant else "data_team"
        specs = [s for s in self.specs if s.audience == audience]
        managed = {m: c for c in all_cards
                   if (m := _marker_of(c.get("description")))
                   and m.startswith(f"storepulse:{space.key}:") and not c.get("archived")}
        wanted_markers = set()
        dashboards = self._existing_dashboards(collection_id)
        for spec in specs:
            card_ids = {}
            for card in spec.cards:
                marker = _marker(space.key, spec.key, card.key)
                wanted_markers.add(marker)
                card_ids[card.key] = self._card(space, spec, card, db_id, collection_id,
                                                managed.get(marker))
            self._dashboard(space, spec, collection_id, card_ids,
                            dashboards.get(_marker(space.key, spec.key)))
        for marker, card in sorted(managed.items()):
            if marker not in wanted_markers:
                label = f"{space.key}: card {card['id']} {card['name']!r} ({marker})"
                self.report.unmanaged_cards.append(label)
                if prune:
                    self.report.actions.append(f"archive {label}")
                    self.api.put(f"/api/card/{card['id']}", {"archived": True})

    def _card(self, space: Space, spec: DashboardSpec, card: CardSpec, db_id: int,
              collection_id: int, existing: dict[str, Any] | None) -> int:
        body = {
            "name": card.name,
            "description": _described(card.description, _marker(space.key, spec.key, card.key)),
            "display": card.display,
            "visualization_settings": card.visualization_settings(),
            "collection_id": collection_id,
            "dataset_query": {"type": "native", "database": db_id,
                              "native": {"query": card.sql,
                                         "template-tags": card.template_tags()}},
        }
        label = f"{space.key}: card {spec.key}/{card.key}"
        if existing is None:
            self.report.actions.append(f"create {label}")
            return self.api.post("/api/card", body)["id"]
        changed = {k: v for k, v in body.items() if existing.get(k) != v}
        if changed:
            self.report.actions.append(f"update {label} ({', '.join(sorted(changed))})")
            self.api.put(f"/api/card/{existing['id']}", changed)
        return existing["id"]

    def _existing_dashboards(self, collection_id: int) -> dict[str, dict[str, Any]]:
        if collection_id < 0:  # created in this dry run
            return {}
        items = _listing(self.api.get(f"/api/collection/{collection_id}/items",
                                      models="dashboard"))
        found = {}
        for item in items:
            dashboard = self.api.get(f"/api/dashboard/{item['id']}")
            marker = _marker_of(dashboard.get("description"))
            if marker and not dashboard.get("archived"):
                found[marker] = dashboard
        return found

    def _dashboard(self, space: Space, spec: DashboardSpec, collection_id: int,
                   card_ids: dict[str, int], existing: dict[str, Any] | None) -> None:
        description = _described(spec.description, _marker(space.key, spec.key))
        parameters = spec.parameters()
        label = f"{space.key}: dashboard {spec.key}"
        if existing is None:
            self.report.actions.append(f"create {label}")
            existing = self.api.post("/api/dashboard", {
                "name": spec.name, "description": description, "collection_id": collection_id,
                "parameters": parameters})
            existing["dashcards"] = []
        current = {d["card_id"]: d for d in existing.get("dashcards", [])}
        dashcards = []
        for index, card in enumerate(spec.cards):
            card_id = card_ids[card.key]
            dashcards.append({
                "id": current[card_id]["id"] if card_id in current else -(index + 1),
                "card_id": card_id,
                "row": card.position[0], "col": card.position[1],
                "size_x": card.size[0], "size_y": card.size[1],
                "parameter_mappings": [
                    {"parameter_id": name, "card_id": card_id,
                     "target": ["variable", ["template-tag", name]]}
                    for name in card.variables],
                "visualization_settings": {},
            })
        wanted = {"name": spec.name, "description": description, "parameters": parameters,
                  "dashcards": dashcards}
        if _same_dashboard(existing, wanted):
            return
        if existing.get("dashcards"):
            self.report.actions.append(f"update {label}")
        self.api.put(f"/api/dashboard/{existing['id']}", wanted)

    # -- permissions -----------------------------------------------------------------------

    def _permissions(self, placed: list[Placed], groups: dict[str, int]) -> None:
        """Each tenant group: the query builder (and native SQL only where the tenant has it)
        on its own database and read on its own collection; every group, All Users
        included, nothing on any other managed database or collection. The data team's
        space is for administrators, who see everything anyway."""
        managed_dbs = {p.database_id for p in placed}
        managed_collections = {p.collection_id for p in placed}
        audiences = [(p.group_id, p) for p in placed if p.group_id is not None]
        audiences.append((groups[ALL_USERS], None))  # everyone else: nothing of ours

        collection_graph = self.api.get("/api/collection/graph")
        collection_changes: dict[str, dict] = {}
        for group_id, own in audiences:
            have = collection_graph["groups"].get(str(group_id), {})
            for collection in managed_collections:
                want = "read" if own and collection == own.collection_id else "none"
                # explicit "none": a new collection inherits the root's grants otherwise
                if have.get(str(collection)) != want:
                    collection_changes.setdefault(str(group_id), {})[str(collection)] = want
        self._write_graph("collection", "/api/collection/graph", collection_graph,
                          collection_changes)

        data_graph = self.api.get("/api/permissions/graph")
        data_changes: dict[str, dict] = {}
        for group_id, own in audiences:
            have = data_graph["groups"].get(str(group_id), {})
            for db in managed_dbs:
                want = NO_QUERIES
                if own and db == own.database_id:
                    want = QUERY_BUILDER_AND_SQL if own.space.native_sql else QUERY_BUILDER
                if _data_access(have.get(str(db))) != want:
                    data_changes.setdefault(str(group_id), {})[str(db)] = want
        self._write_graph("data", "/api/permissions/graph", data_graph, data_changes)

    def _write_graph(self, kind: str, path: str, graph: dict[str, Any],
                     changes: dict[str, dict]) -> None:
        """Only the groups that change, at the revision read (Metabase refuses a stale one)."""
        if changes:
            self.report.actions.append(f"update {kind} permissions for groups "
                                       f"{sorted(changes)}")
            self.api.put(path, {"revision": graph["revision"], "groups": changes})


@dataclass(frozen=True)
class Placed:
    """A space's Metabase objects."""

    space: Space
    database_id: int
    collection_id: int
    group_id: int | None  # None for the data team (administrators)


def _data_access(entry: dict[str, Any] | None) -> dict[str, str]:
    """A group's view-data and create-queries on a database as the graph states them
    (Metabase omits create-queries when it is "no", and a database it has no entry for)."""
    entry = entry or {}
    return {"view-data": entry.get("view-data", "unrestricted"),
            "create-queries": entry.get("create-queries", "no")}


def _same_dashboard(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    if any(existing.get(k) != wanted[k] for k in ("name", "description", "parameters")):
        return False
    keys = ("id", "card_id", "row", "col", "size_x", "size_y", "parameter_mappings")
    have = sorted(tuple(_freeze(d.get(k)) for k in keys) for d in existing.get("dashcards", []))
    want = sorted(tuple(_freeze(d.get(k)) for k in keys) for d in wanted["dashcards"])
    return have == want


def _freeze(value: Any) -> Any:
    return repr(value) if isinstance(value, (list, dict)) else value
