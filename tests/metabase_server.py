"""A local HTTP server with the Metabase REST endpoints the provisioner uses.

It keeps state, answers with Metabase's shapes, and rejects what Metabase rejects: requests
without a session, bodies missing required fields, stale permission-graph revisions, dashcards
pointing at unknown cards or parameters, and the removed ``POST /api/dashboard/:id/cards``.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlparse

from tests.loopback import LoopbackHttpServer


class MetabaseState:
    def __init__(self, email: str, password: str, set_up: bool = True) -> None:
        self.email, self.password = email, password
        self.set_up = set_up
        self.setup_token = str(uuid.uuid4())
        self.sessions: set[str] = set()
        self.next_id = 100
        self.databases: dict[int, dict] = {}
        self.collections: dict[int, dict] = {}
        self.groups: dict[int, dict] = {1: {"id": 1, "name": "All Users"},
                                        2: {"id": 2, "name": "Administrators"}}
        self.cards: dict[int, dict] = {}
        self.dashboards: dict[int, dict] = {}
        self.data_graph: dict[str, Any] = {"revision": 1, "groups": {}}
        self.collection_graph: dict[str, Any] = {"revision": 1, "groups": {}}
        self.writes: list[tuple[str, str]] = []  # (method, path) of every accepted write
        self.lock = threading.Lock()

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _require(body: dict, *fields: str) -> None:
    missing = [f for f in fields if body.get(f) in (None, "")]
    if missing:
        raise Reject(400, json.dumps({"errors": {f: "value must be a non-blank string."
                                                 for f in missing}}))


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
        state.email, state.password = body["user"]["email"], body["user"]["password"]
        state.set_up = True
        token = str(uuid.uuid4())
        state.sessions.add(token)
        return 200, {"id": token}
    if method == "POST" and path == "/api/session":
        known = (body.get("username"), body.get("password")) == (state.email, state.password)
        if not state.set_up or not known:
            raise Reject(401, json.dumps({"errors": {"password": "did not match stored"}}))
        token = str(uuid.uuid4())
        state.sessions.add(token)
        return 200, {"id": token}
    if session not in state.sessions:
        raise Reject(401, "Unauthenticated")
    if method != "GET":
        state.writes.append((method, path))

    if path == "/api/user/current":
        return 200, {"id": 1, "email": state.email, "is_superuser": True}

    if path == "/api/database":
        if method == "GET":
            return 200, {"data": list(state.databases.values()),
                         "total": len(state.databases)}
        _require(body, "engine", "name", "details")
        _require(body["details"], "host", "port", "dbname", "user")
        db = {"id": state.new_id(), "name": body["name"], "engine": body["engine"],
              "details": {**body["details"], "password": "**MetabasePass**"}}
        state.databases[db["id"]] = db
        return 200, db
    if m := re.fullmatch(r"/api/database/(\d+)", path):
        db = state.databases.get(int(m.group(1)))
        if db is None:
            raise Reject(404, "Not found.")
        if method == "PUT":
            if "details" in body:
                db["details"] = {**body["details"], "password": "**MetabasePass**"}
            db.update({k: v for k, v in body.items() if k != "details"})
        return 200, db

    if path == "/api/collection":
        if method == "GET":
            return 200, [{"id": "root", "name": "Our analytics"}, *state.collections.values()]
        _require(body, "name")
        if "color" in body and not re.fullmatch(r"#[0-9A-Fa-f]{6}", body["color"]):
            raise Reject(400, "color must be a hex color")
        coll = {"id": state.new_id(), "name": body["name"], "archived": False,
                "description": body.get("description"), "location": "/",
                "personal_owner_id": None}
        state.collections[coll["id"]] = coll
        # like Metabase: a new top-level collection inherits the root's grant to All Users
        state.collection_graph["groups"].setdefault("1", {})[str(coll["id"])] = "write"
        return 200, coll
    if m := re.fullmatch(r"/api/collection/(\d+)/items", path):
        cid = int(m.group(1))
        items = [{"id": d["id"], "model": "dashboard", "name": d["name"]}
                 for d in state.dashboards.values() if d["collection_id"] == cid
                 and "models=dashboard" in query]
        return 200, {"data": items, "total": len(items)}
    if path == "/api/collection/graph":
        return _graph(state, state.collection_graph, method, body,
                      valid=lambda v: v in ("read", "write", "none"))

    if path == "/api/permissions/group":
        if method == "GET":
            return 200, list(state.groups.values())
        _require(body, "name")
        if any(g["name"] == body["name"] for g in state.groups.values()):
            raise Reject(400, "A group with that name already exists.")
        group = {"id": state.new_id(), "name": body["name"]}
        state.groups[group["id"]] = group
        return 200, group
    if path == "/api/permissions/graph":
        return _graph(state, state.data_graph, method, body,
                      valid=lambda v: isinstance(v, dict) and "view-data" in v)

    if path == "/api/card":
        if method == "GET":
            return 200, list(state.cards.values())
        _require(body, "name", "display", "dataset_query")
        if not isinstance(body.get("visualization_settings"), dict):
            raise Reject(400, "visualization_settings must be a map")
        _check_query(state, body["dataset_query"])
        _check_collection(state, body.get("collection_id"))
        card = {**body, "id": state.new_id(), "archived": False}
        state.cards[card["id"]] = card
        return 200, card
    if m := re.fullmatch(r"/api/card/(\d+)", path):
        card = state.cards.get(int(m.group(1)))
        if card is None:
            raise Reject(404, "Not found.")
        if method == "PUT":
            if "dataset_query" in body:
                _check_query(state, body["dataset_query"])
            card.update(body)
        return 200, card

    if path == "/api/dashboard" and method == "POST":
        _require(body, "name")
        _check_collection(state, body.get("collection_id"))
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
        if method == "PUT":
            _put_dashboard(state, dash, body)
        return 200, dash
    raise Reject(404, "API endpoint does not exist.")


def _graph(state: MetabaseState, graph: dict, method: str, body: Any, valid) -> tuple[int, Any]:
    if method == "GET":
        return 200, graph
    if body.get("revision") != graph["revision"]:
        raise Reject(409, "Looks like someone else edited the permissions and your data is "
                          "out of date. Please fetch new data and try again.")
    for group_id, entries in body.get("groups", {}).items():
        if int(group_id) not in state.groups:
            raise Reject(400, f"unknown group {group_id}")
        for key, value in entries.items():
            if not valid(value):
                raise Reject(400, f"invalid permission {value!r} for {key}")
        graph["groups"].setdefault(str(group_id), {}).update(entries)
    graph["revision"] += 1
    return 200, graph


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
                    data = json.dumps(payload).encode()
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

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return self.base_url
