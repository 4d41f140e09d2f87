"""A local HTTP server speaking the part of Metabase's REST API StorePulse uses, as the
open-source edition of the version pinned in docker-compose.yml (v0.56) answers it.

Its behaviour comes from Metabase's API documentation and source, not from what our code
sends (paths below are in github.com/metabase/metabase):

- Sessions: ``POST /api/session`` for any user; every other call needs the session header.
  Users (``POST /api/user``) and group membership (``POST /api/permissions/membership``) are
  for administrators; every user is in All Users.
- Data permissions (``permissions_rest/data_permissions/graph.clj``, ``permissions_rest/api.clj``):
  view-data ``unrestricted`` or ``legacy-no-self-service``; ``blocked`` answers 402 without a
  premium token; create-queries ``query-builder-and-native``, ``query-builder`` or ``no``
  (any other value: 400); create-queries other than ``no`` implies view-data
  ``unrestricted``. The graph is read and written by administrators only, a write with a stale
  revision answers 409, a write carries only the groups and databases it changes, and a read
  leaves out create-queries ``no`` (the least permissive value). A new database gives All Users
  the query builder and native SQL on it, and other groups ``no``; a new group gets ``no`` on
  every database.
- Collection permissions: ``read``, ``write`` or ``none``; a new collection copies its
  parent's (the root's: All Users may curate it). The graph is for administrators, with the
  same revision check.
- Enforcement for other users: a database is listed or opened only with the query builder on
  it (``warehouses/models/database.clj``, ``can-read?``); a native query needs
  ``query-builder-and-native``; collections, their items, cards and dashboards are listed or
  opened only with read on their collection, and a card runs only for those who can read it.
  A refusal is 403 "You don't have permissions to do that."

- Removal (``warehouses/api.clj``, ``permissions_rest/api.clj``, ``collections/api.clj``):
  ``DELETE /api/database/:id`` is for administrators (write-check), answers 204, and the
  application database's foreign keys delete the cards on that database with it (and their
  places on dashboards); ``DELETE /api/permissions/group/:id`` is for administrators, answers
  204, takes the group's grants and memberships with it, and refuses the magic groups (All
  Users, Administrators) with 400; ``PUT /api/collection/:id`` with ``archived`` needs write
  on the collection and moves it, with its cards and dashboards, to the trash: listings leave
  archived collections out.

It also rejects bodies missing required fields, dashcards pointing at unknown cards or
parameters, and the removed ``POST /api/dashboard/:id/cards``.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.loopback import LoopbackHttpServer

ALL_USERS, ADMINISTRATORS = 1, 2
VIEW_DATA = ("unrestricted", "legacy-no-self-service")
VIEW_DATA_PAID = ("blocked",)
CREATE_QUERIES = ("query-builder-and-native", "query-builder", "no")
QUERY_BUILDER = ("query-builder", "query-builder-and-native")
COLLECTION_ACCESS = ("read", "write", "none")
FORBIDDEN = "You don't have permissions to do that."


@dataclass
class User:
    id: int
    email: str
    password: str
    is_superuser: bool = False
    groups: set[int] = field(default_factory=lambda: {ALL_USERS})


class MetabaseState:
    def __init__(self, email: str, password: str, set_up: bool = True) -> None:
        self.set_up = set_up
        self.setup_token = str(uuid.uuid4())
        self.users: dict[int, User] = {1: User(1, email, password, True,
                                               {ALL_USERS, ADMINISTRATORS})}
        self.sessions: dict[str, int] = {}
        self.next_id = 100
        self.databases: dict[int, dict] = {}
        self.collections: dict[int, dict] = {}
        self.groups: dict[int, dict] = {ALL_USERS: {"id": ALL_USERS, "name": "All Users"},
                                        ADMINISTRATORS: {"id": ADMINISTRATORS,
                                                         "name": "Administrators"}}
        self.cards: dict[int, dict] = {}
        self.dashboards: dict[int, dict] = {}
        # (group, database) -> {"view-data": ..., "create-queries": ...}
        self.data_perms: dict[tuple[int, int], dict[str, str]] = {}
        self.data_revision = 1
        # (group, collection id or "root") -> read / write / none
        self.collection_perms: dict[tuple[int, Any], str] = {(ALL_USERS, "root"): "write"}
        self.collection_revision = 1
        self.writes: list[tuple[str, str]] = []  # (method, path) of every accepted write
        self.lock = threading.Lock()

    @property
    def admin(self) -> User:
        return self.users[1]

    @property
    def email(self) -> str:
        return self.admin.email

    @property
    def password(self) -> str:
        return self.admin.password

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # -- what a user may do ----------------------------------------------------------------

    def can_read_collection(self, user: User, collection_id: Any) -> bool:
        if user.is_superuser:
            return True
        key = "root" if collection_id is None else collection_id
        return any(self.collection_perms.get((g, key), "none") in ("read", "write")
                   for g in user.groups)

    def can_write_collection(self, user: User, collection_id: Any) -> bool:
        key = "root" if collection_id is None else collection_id
        return user.is_superuser or any(
            self.collection_perms.get((g, key), "none") == "write" for g in user.groups)

    def create_queries(self, user: User, db_id: int) -> str:
        """The most permissive create-queries over the user's groups."""
        if user.is_superuser:
            return "query-builder-and-native"
        values = {self.data_perms.get((g, db_id), {}).get("create-queries", "no")
                  for g in user.groups}
        return next(v for v in CREATE_QUERIES if v in values or v == "no")

    # -- the graphs as the API shows them ---------------------------------------------------

    def data_graph(self) -> dict[str, Any]:
        groups: dict[str, dict] = {}
        for (group_id, db_id), perms in self.data_perms.items():
            shown = {k: v for k, v in perms.items() if not (k == "create-queries" and v == "no")}
            groups.setdefault(str(group_id), {})[str(db_id)] = shown
        for db_id in self.databases:  # administrators: everything, not stored
            groups.setdefault(str(ADMINISTRATORS), {})[str(db_id)] = {
                "view-data": "unrestricted", "create-queries": "query-builder-and-native"}
        return {"revision": self.data_revision, "groups": groups}

    def collection_graph(self) -> dict[str, Any]:
        groups: dict[str, dict] = {}
        for group_id in self.groups:
            groups[str(group_id)] = {
                str(c): ("write" if group_id == ADMINISTRATORS
                         else self.collection_perms.get((group_id, c), "none"))
                for c in ["root", *self.collections]}
        return {"revision": self.collection_revision, "groups": groups}


class Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _require(body: dict, *fields: str) -> None:
    missing = [f for f in fields if body.get(f) in (None, "")]
    if missing:
        raise Reject(400, json.dumps({"errors": {f: "value must be a non-blank string."
                                                 for f in missing}}))


def _superuser(user: User) -> None:
    if not user.is_superuser:
        raise Reject(403, FORBIDDEN)


def _handle(state: MetabaseState, method: str, path: str, query: str, body: Any,
            session: str | None) -> tuple[int, Any]:
    if path == "/api/health":
        return 200, {"status": "ok"}
    if path == "/api/session/properties":
        return 200, {"has-user-setup": state.set_up,
                     "setup-token": None if state.set_up else state.setup_token}
    if method == "POST" and path == "/api/setup":
        if state.set_up or body.get("token") != state.setup_token:
            raise Reject(403, "The /api/setup route can only be used to create the first user")
        _require(body.get("user", {}), "email", "password", "first_name", "last_name")
        state.admin.email, state.admin.password = (body["user"]["email"],
                                                   body["user"]["password"])
        state.set_up = True
        token = str(uuid.uuid4())
        state.sessions[token] = state.admin.id
        return 200, {"id": token}
    if method == "POST" and path == "/api/session":
        user = next((u for u in state.users.values()
                     if (u.email, u.password) == (body.get("username"), body.get("password"))),
                    None)
        if not state.set_up or user is None:
            raise Reject(401, json.dumps({"errors": {"password": "did not match stored"}}))
        token = str(uuid.uuid4())
        state.sessions[token] = user.id
        return 200, {"id": token}
    if session not in state.sessions:
        raise Reject(401, "Unauthenticated")
    user = state.users[state.sessions[session]]
    status, payload = _route(state, user, method, path, parse_qs(query), body)
    if method != "GET" and not path.endswith("/query") and path != "/api/dataset":
        state.writes.append((method, path))
    return status, payload


def _route(state: MetabaseState, user: User, method: str, path: str,
           query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
    if path == "/api/user/current":
        return 200, {"id": user.id, "email": user.email, "is_superuser": user.is_superuser}
    if path == "/api/user" and method == "POST":
        _superuser(user)
        _require(body, "email", "password")
        if any(u.email == body["email"] for u in state.users.values()):
            raise Reject(400, json.dumps({"errors": {"email": "Email address already in use."}}))
        new = User(state.new_id(), body["email"], body["password"])
        state.users[new.id] = new
        return 200, {"id": new.id, "email": new.email}
    if path == "/api/permissions/membership" and method == "POST":
        _superuser(user)
        group_id, user_id = body.get("group_id"), body.get("user_id")
        if group_id not in state.groups or user_id not in state.users:
            raise Reject(404, "Not found.")
        state.users[user_id].groups.add(group_id)
        return 200, [{"group_id": g, "user_id": user_id}
                     for g in sorted(state.users[user_id].groups)]

    if path == "/api/database":
        if method == "GET":
            listed = [d for d in state.databases.values()
                      if state.create_queries(user, d["id"]) in QUERY_BUILDER]
            return 200, {"data": listed, "total": len(listed)}
        _superuser(user)
        _require(body, "engine", "name", "details")
        _require(body["details"], "host", "port", "dbname", "user")
        db = {"id": state.new_id(), "name": body["name"], "engine": body["engine"],
              "details": {**body["details"], "password": "**MetabasePass**"}}
        state.databases[db["id"]] = db
        for group_id in state.groups:
            if group_id != ADMINISTRATORS:
                state.data_perms[(group_id, db["id"])] = {
                    "view-data": "unrestricted",
                    "create-queries": "query-builder-and-native" if group_id == ALL_USERS
                    else "no"}
        return 200, db
    if m := re.fullmatch(r"/api/database/(\d+)", path):
        db = state.databases.get(int(m.group(1)))
        if db is None:
            raise Reject(404, "Not found.")
        if method == "DELETE":
            _superuser(user)
            _delete_database(state, db["id"])
            return 204, None
        if state.create_queries(user, db["id"]) not in QUERY_BUILDER:
            raise Reject(403, FORBIDDEN)
        if method == "PUT":
            _superuser(user)
            if "details" in body:
                db["details"] = {**body["details"], "password": "**MetabasePass**"}
            db.update({k: v for k, v in body.items() if k != "details"})
        return 200, db
    if path == "/api/dataset" and method == "POST":
        db_id = body.get("database")
        if db_id not in state.databases:
            raise Reject(400, f"database {db_id} does not exist")
        needed = ("query-builder-and-native",) if body.get("type") == "native" \
            else QUERY_BUILDER
        if state.create_queries(user, db_id) not in needed:
            raise Reject(403, "You do not have permissions to run this query.")
        return 202, {"status": "completed", "row_count": 0, "data": {"rows": [], "cols": []}}

    if path == "/api/collection":
        if method == "GET":
            return 200, [{"id": "root", "name": "Our analytics"},
                         *(c for c in state.collections.values()
                           if not c["archived"] and state.can_read_collection(user, c["id"]))]
        _require(body, "name")
        if "color" in body and not re.fullmatch(r"#[0-9A-Fa-f]{6}", body["color"]):
            raise Reject(400, "color must be a hex color")
        parent = body.get("parent_id")
        if not state.can_write_collection(user, parent):
            raise Reject(403, FORBIDDEN)
        coll = {"id": state.new_id(), "name": body["name"], "archived": False,
                "description": body.get("description"), "location": "/",
                "personal_owner_id": None}
        state.collections[coll["id"]] = coll
        parent_key = "root" if parent is None else parent
        for (group_id, key), access in list(state.collection_perms.items()):
            if key == parent_key:  # a new collection copies its parent's grants
                state.collection_perms[(group_id, coll["id"])] = access
        return 200, coll
    if path == "/api/collection/graph":
        _superuser(user)
        if method == "GET":
            return 200, state.collection_graph()
        return 200, _put_collection_graph(state, body)
    if m := re.fullmatch(r"/api/collection/(\d+)(/items)?", path):
        cid = int(m.group(1))
        if cid not in state.collections:
            raise Reject(404, "Not found.")
        if not state.can_read_collection(user, cid):
            raise Reject(403, FORBIDDEN)
        if not m.group(2) and method == "PUT":
            if not state.can_write_collection(user, cid):
                raise Reject(403, FORBIDDEN)
            collection = state.collections[cid]
            collection.update({k: v for k, v in body.items()
                               if k in ("name", "description", "archived")})
            for item in [*state.cards.values(), *state.dashboards.values()]:
                if item["collection_id"] == cid:  # archived with it, into the trash
                    item["archived"] = collection["archived"]
            return 200, collection
        if not m.group(2):
            return 200, state.collections[cid]
        models = query.get("models", ["card", "dashboard"])
        items = [{"id": d["id"], "model": "dashboard", "name": d["name"]}
                 for d in state.dashboards.values()
                 if d["collection_id"] == cid and "dashboard" in models]
        items += [{"id": c["id"], "model": "card", "name": c["name"]}
                  for c in state.cards.values() if c["collection_id"] == cid and "card" in models]
        return 200, {"data": items, "total": len(items)}

    if path == "/api/permissions/group":
        _superuser(user)
        if method == "GET":
            return 200, list(state.groups.values())
        _require(body, "name")
        if any(g["name"] == body["name"] for g in state.groups.values()):
            raise Reject(400, "A group with that name already exists.")
        group = {"id": state.new_id(), "name": body["name"]}
        state.groups[group["id"]] = group
        for db_id in state.databases:
            state.data_perms[(group["id"], db_id)] = {"view-data": "unrestricted",
                                                      "create-queries": "no"}
        return 200, group
    if (m := re.fullmatch(r"/api/permissions/group/(\d+)", path)) and method == "DELETE":
        _superuser(user)
        group_id = int(m.group(1))
        if group_id in (ALL_USERS, ADMINISTRATORS):
            raise Reject(400, f"You cannot edit or delete the '{state.groups[group_id]['name']}' "
                              "permissions group!")
        state.groups.pop(group_id, None)  # an unknown id deletes nothing, still 204
        for grants in (state.data_perms, state.collection_perms):
            for key in [k for k in grants if k[0] == group_id]:
                del grants[key]
        for member in state.users.values():
            member.groups.discard(group_id)
        return 204, None
    if path == "/api/permissions/graph":
        _superuser(user)
        if method == "GET":
            return 200, state.data_graph()
        return 200, _put_data_graph(state, body)

    if path == "/api/card":
        if method == "GET":
            return 200, [c for c in state.cards.values()
                         if state.can_read_collection(user, c["collection_id"])]
        _require(body, "name", "display", "dataset_query")
        if not isinstance(body.get("visualization_settings"), dict):
            raise Reject(400, "visualization_settings must be a map")
        _check_query(state, body["dataset_query"])
        _check_collection(state, body.get("collection_id"))
        if not state.can_write_collection(user, body.get("collection_id")) or \
                state.create_queries(user, body["dataset_query"]["database"]) != \
                "query-builder-and-native":
            raise Reject(403, FORBIDDEN)
        card = {**body, "id": state.new_id(), "archived": False}
        state.cards[card["id"]] = card
        return 200, card
    if m := re.fullmatch(r"/api/card/(\d+)(/query)?", path):
        card = state.cards.get(int(m.group(1)))
        if card is None:
            raise Reject(404, "Not found.")
        if not state.can_read_collection(user, card["collection_id"]):
            raise Reject(403, FORBIDDEN)
        if m.group(2):
            return 202, {"status": "completed", "row_count": 0,
                         "data": {"rows": [], "cols": []}}
        if method == "PUT":
            if not state.can_write_collection(user, card["collection_id"]):
                raise Reject(403, FORBIDDEN)
            if "dataset_query" in body:
                _check_query(state, body["dataset_query"])
            card.update(body)
        return 200, card

    if path == "/api/dashboard" and method == "POST":
        _require(body, "name")
        _check_collection(state, body.get("collection_id"))
        if not state.can_write_collection(user, body.get("collection_id")):
            raise Reject(403, FORBIDDEN)
        dash = {"id": state.new_id(), "name": body["name"],
                "description": body.get("description"), "archived": False,
                "collection_id": body.get("collection_id"),
                "parameters": body.get("parameters", []), "dashcards": []}
        state.dashboards[dash["id"]] = dash
        return 200, dash
    if m := re.fullmatch(r"/api/dashboard/(\d+)/cards", path):
        raise Reject(404, "API endpoint does not exist.")  # removed in Metabase 0.47+
    if m := re.fullmatch(r"/api/dashboard/(\d+)", path):
        dash = state.dashboards.get(int(m.group(1)))
        if dash is None:
            raise Reject(404, "Not found.")
        if not state.can_read_collection(user, dash["collection_id"]):
            raise Reject(403, FORBIDDEN)
        if method == "PUT":
            if not state.can_write_collection(user, dash["collection_id"]):
                raise Reject(403, FORBIDDEN)
            _put_dashboard(state, dash, body)
        return 200, dash
    raise Reject(404, "API endpoint does not exist.")


def _delete_database(state: MetabaseState, db_id: int) -> None:
    """The database, its grants, and (foreign keys with on delete cascade) its cards and
    their places on dashboards."""
    del state.databases[db_id]
    for key in [k for k in state.data_perms if k[1] == db_id]:
        del state.data_perms[key]
    gone = {c for c, card in state.cards.items() if card["dataset_query"]["database"] == db_id}
    for card_id in gone:
        del state.cards[card_id]
    for dash in state.dashboards.values():
        dash["dashcards"] = [d for d in dash["dashcards"] if d["card_id"] not in gone]


def _check_revision(have: int, body: dict) -> None:
    if body.get("revision") != have:
        raise Reject(409, "Looks like someone else edited the permissions and your data is "
                          "out of date. Please fetch new data and try again.")


def _put_data_graph(state: MetabaseState, body: dict) -> dict[str, Any]:
    _check_revision(state.data_revision, body)
    changes = {}
    for group_id, databases in body.get("groups", {}).items():
        if int(group_id) not in state.groups:
            raise Reject(400, f"unknown group {group_id}")
        for db_id, perms in databases.items():
            if int(db_id) not in state.databases or not isinstance(perms, dict):
                raise Reject(400, "Cannot parse permissions graph because it is invalid")
            view, create = perms.get("view-data"), perms.get("create-queries")
            if view in VIEW_DATA_PAID:
                raise Reject(402, f"The {view} permissions functionality is only enabled if "
                                  "you have a premium token with the advanced-permissions "
                                  "feature.")
            if (view is not None and view not in VIEW_DATA) or \
                    (create is not None and create not in CREATE_QUERIES):
                raise Reject(400, "Cannot parse permissions graph because it is invalid")
            changes[(int(group_id), int(db_id))] = perms
    for key, perms in changes.items():  # validated as a whole, then applied
        entry = state.data_perms.setdefault(key, {"view-data": "unrestricted",
                                                  "create-queries": "no"})
        entry.update({k: v for k, v in perms.items() if k in ("view-data", "create-queries")})
        if entry["create-queries"] != "no":
            entry["view-data"] = "unrestricted"
    state.data_revision += 1
    return state.data_graph()


def _put_collection_graph(state: MetabaseState, body: dict) -> dict[str, Any]:
    _check_revision(state.collection_revision, body)
    changes = {}
    for group_id, collections in body.get("groups", {}).items():
        if int(group_id) not in state.groups:
            raise Reject(400, f"unknown group {group_id}")
        for collection, access in collections.items():
            key = "root" if collection == "root" else int(collection)
            if access not in COLLECTION_ACCESS or (key != "root"
                                                   and key not in state.collections):
                raise Reject(400, f"invalid permission {access!r} for {collection}")
            changes[(int(group_id), key)] = access
    state.collection_perms.update(changes)
    state.collection_revision += 1
    return state.collection_graph()


def _check_query(state: MetabaseState, query: dict) -> None:
    if query.get("type") != "native" or not query.get("native", {}).get("query"):
        raise Reject(400, "dataset_query must be a native query with SQL")
    if query.get("database") not in state.databases:
        raise Reject(400, f"database {query.get('database')} does not exist")
    for tag in query["native"].get("template-tags", {}).values():
        _require(tag, "id", "name", "display-name", "type")


def _check_collection(state: MetabaseState, collection_id: Any) -> None:
    if collection_id is not None and collection_id not in state.collections:
        raise Reject(400, f"collection {collection_id} does not exist")


def _put_dashboard(state: MetabaseState, dash: dict, body: dict) -> None:
    parameters = body.get("parameters", dash["parameters"])
    for parameter in parameters:
        _require(parameter, "id", "name", "slug", "type")
    if "dashcards" in body:
        kept = []
        existing = {d["id"]: d for d in dash["dashcards"]}
        for dashcard in body["dashcards"]:
            for key in ("id", "card_id", "row", "col", "size_x", "size_y"):
                if dashcard.get(key) is None:
                    raise Reject(400, f"dashcards: {key} is required")
            if dashcard["card_id"] not in state.cards:
                raise Reject(400, f"card {dashcard['card_id']} does not exist")
            for mapping in dashcard.get("parameter_mappings", []):
                if mapping["parameter_id"] not in {p["id"] for p in parameters}:
                    raise Reject(400, f"unknown parameter {mapping['parameter_id']}")
            if dashcard["id"] >= 0 and dashcard["id"] not in existing:
                raise Reject(404, f"dashcard {dashcard['id']} is not on this dashboard")
            new_id = dashcard["id"] if dashcard["id"] >= 0 else state.new_id()
            kept.append({**dashcard, "id": new_id, "dashboard_id": dash["id"]})
        dash["dashcards"] = kept
    dash.update({k: v for k, v in body.items() if k != "dashcards"})


class MetabaseServer(LoopbackHttpServer):
    def __init__(self, email: str = "admin@storepulse.test", password: str = "s3cret!",
                 set_up: bool = True) -> None:
        self.state = MetabaseState(email, password, set_up)
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _serve(self, method: str) -> None:
                parsed = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                    with state.lock:
                        status, payload = _handle(state, method, parsed.path, parsed.query,
                                                  body, self.headers.get("X-Metabase-Session"))
                    data = b"" if payload is None else json.dumps(payload).encode()
                    content_type = "application/json"
                except Reject as exc:
                    status, data, content_type = exc.status, str(exc).encode(), "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return self.base_url
