"""A PROTOCOL TEST DOUBLE, not Supabase: a local aiohttp server speaking the subset of PostgREST
that SupabaseStore uses (filters eq/in/is, order, limit, offset, ``Prefer: count=exact`` ->
``Content-Range``, ``return=representation``, upsert with ``on_conflict``, rpc), backed by
in-memory dicts. Its rpc functions re-implement those of store/sql/supabase.sql in Python,
including their all-or-nothing behaviour and the foreign keys and cascades of the tables.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

Row = dict[str, Any]
Key = tuple[Any, ...]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# table -> (primary key columns, {column: (parent table, ON DELETE CASCADE)})
SCHEMA: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "opencode_sessions": (("id",), {}),
    "opencode_messages": (("id",), {"session_id": "opencode_sessions"}),
    "opencode_message_parts": (("id",), {"message_id": "opencode_messages"}),
    "opencode_session_costs": (
        ("session_id", "provider_id", "model_id"),
        {"session_id": "opencode_sessions"},
    ),
    "opencode_todos": (("session_id",), {"session_id": "opencode_sessions"}),
    "opencode_questions": (("id",), {"session_id": "opencode_sessions"}),
    "opencode_compaction": (("session_id",), {"session_id": "opencode_sessions"}),
    "opencode_usage": (("user_id", "day"), {}),
    "opencode_usage_reservations": (("id",), {}),
    "opencode_webhook_deliveries": (("id",), {}),
    "opencode_message_files": (("session_id", "id"), {"session_id": "opencode_sessions"}),
}
PART_TYPES = {"text", "reasoning", "tool_call", "step_start", "step_finish", "file"}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fmt(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Database:
    def __init__(self) -> None:
        self.tables: dict[str, dict[Key, Row]] = {name: {} for name in SCHEMA}

    def key(self, table: str, row: Row) -> Key:
        return tuple(row.get(c) for c in SCHEMA[table][0])

    def get(self, table: str, *key: Any) -> Row | None:
        return self.tables[table].get(tuple(key))

    def check(self, table: str, row: Row) -> None:
        for column, parent in SCHEMA[table][1].items():
            if self.get(parent, row.get(column)) is None:
                raise ApiError(409, "23503", f"{table}.{column} violates a foreign key")
        if table == "opencode_message_parts" and row.get("type") not in PART_TYPES:
            raise ApiError(400, "23514", "message_parts.type violates a check constraint")

    def insert(self, table: str, row: Row, *, merge: bool = False) -> Row:
        key = self.key(table, row)
        existing = self.tables[table].get(key)
        if existing is not None and not merge:
            raise ApiError(409, "23505", f"duplicate key in {table}")
        new = {**existing, **row} if existing is not None else dict(row)
        self.check(table, new)
        self.tables[table][key] = new
        return new

    def update(self, table: str, key: Key, changes: Row) -> Row:
        # Rows are replaced, never mutated, so a shallow copy of a table is a snapshot.
        row = {**self.tables[table][key], **changes}
        self.tables[table][key] = row
        return row

    def delete(self, table: str, key: Key) -> Row:
        row = self.tables[table].pop(key)
        for child, (_, fks) in SCHEMA.items():
            for column, parent in fks.items():
                if parent == table:
                    for ck, crow in list(self.tables[child].items()):
                        if crow.get(column) == row[SCHEMA[table][0][0]]:
                            self.delete(child, ck)
        return row

    def atomic(self, fn: Callable[[], Any]) -> Any:
        snapshot = {name: dict(rows) for name, rows in self.tables.items()}
        try:
            return fn()
        except BaseException:
            self.tables = snapshot
            raise


def parse_filters(query: Any) -> list[tuple[str, str, Any]]:
    filters = []
    for column, raw in query.items():
        if column in ("select", "order", "limit", "offset", "on_conflict", "columns"):
            continue
        op, _, value = raw.partition(".")
        if op == "in":
            items = [v.strip().strip('"') for v in value.strip("()").split(",") if v.strip()]
            filters.append((column, "in", items))
        else:
            filters.append((column, op, value))
    return filters


def matches(row: Row, filters: list[tuple[str, str, Any]]) -> bool:
    for column, op, value in filters:
        got = fmt(row.get(column))
        if op in ("eq", "is") and got != value:
            return False
        if op == "neq" and got == value:
            return False
        if op == "in" and got not in value:
            return False
        if op in ("gte", "gt", "lte", "lt") and (
            got == "null"
            or not {"gte": got >= value, "gt": got > value, "lte": got <= value, "lt": got < value}[
                op
            ]
        ):
            return False
    return True


def order_rows(rows: list[Row], spec: str | None) -> list[Row]:
    if not spec:
        return rows
    for term in reversed(spec.split(",")):
        column, _, rest = term.partition(".")

        def key(row: Row, column: str = column) -> tuple[bool, Any]:
            return (row.get(column) is not None, row.get(column))

        rows.sort(key=key, reverse=rest.startswith("desc"))
    return rows


class FakePostgrest:
    """``async with FakePostgrest() as server``: ``server.url`` is the base URL (no /rest/v1)."""

    def __init__(self) -> None:
        self.db = Database()
        # (Authorization, apikey) of every request, so tests can see who a request acted for.
        self.seen_auth: list[tuple[str, str]] = []
        app = web.Application(middlewares=[self._record_auth])
        app.router.add_post("/rest/v1/rpc/{name}", self._rpc)
        app.router.add_route("*", "/rest/v1/{table}", self._table)
        self._server = TestServer(app, host="127.0.0.1")
        self.url = ""

    async def __aenter__(self) -> FakePostgrest:
        await self._server.start_server()
        self.url = str(self._server.make_url("")).rstrip("/")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.close()

    @web.middleware
    async def _record_auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.seen_auth.append(
            (request.headers.get("Authorization", ""), request.headers.get("apikey", ""))
        )
        response: web.StreamResponse = await handler(request)
        return response

    @staticmethod
    def _error(exc: ApiError) -> web.Response:
        return web.json_response(
            {"code": exc.code, "message": exc.message, "details": None, "hint": None},
            status=exc.status,
        )

    async def _table(self, request: web.Request) -> web.Response:
        table = request.match_info["table"]
        if table not in SCHEMA:
            return self._error(ApiError(404, "42P01", f"relation {table} does not exist"))
        prefer = request.headers.get("Prefer", "")
        filters = parse_filters(request.query)
        rows_of = self.db.tables[table]
        try:
            if request.method == "GET":
                rows = order_rows(
                    [r for r in rows_of.values() if matches(r, filters)],
                    request.query.get("order"),
                )
                total = len(rows)
                offset = int(request.query.get("offset", 0))
                limit = request.query.get("limit")
                page = rows[offset : offset + int(limit)] if limit is not None else rows[offset:]
                headers = {}
                if "count=exact" in prefer:
                    span = f"{offset}-{offset + len(page) - 1}" if page else "*"
                    headers["Content-Range"] = f"{span}/{total}"
                return web.json_response(page, headers=headers)
            if request.method == "POST":
                body = await request.json()
                items = body if isinstance(body, list) else [body]
                merge = "resolution=merge-duplicates" in prefer
                if "resolution=ignore-duplicates" in prefer:
                    stored = self.db.tables[table]
                    items = [r for r in items if self.db.key(table, r) not in stored]
                out = self.db.atomic(
                    lambda: [self.db.insert(table, copy.deepcopy(r), merge=merge) for r in items]
                )
                return web.json_response(out, status=201)
            if request.method == "PATCH":
                changes = await request.json()
                keys = [k for k, r in rows_of.items() if matches(r, filters)]
                out = [self.db.update(table, k, changes) for k in keys]
                return web.json_response(out)
            if request.method == "DELETE":
                keys = [k for k, r in rows_of.items() if matches(r, filters)]
                out = [self.db.delete(table, k) for k in keys]
                return web.json_response(out)
        except ApiError as exc:
            return self._error(exc)
        return web.json_response({"message": "method not allowed"}, status=405)

    async def _rpc(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        params = await request.json()
        fn = getattr(self, f"_fn_{name.removeprefix('opencode_')}", None)
        if fn is None:
            return self._error(ApiError(404, "PGRST202", f"function {name} not found"))
        try:
            result = self.db.atomic(lambda: fn(**params))
        except ApiError as exc:
            return self._error(exc)
        return web.json_response(result)

    # -- the functions of supabase.sql -------------------------------------------------------
    def _session_user(self, session_id: str) -> Any:
        session = self.db.get("opencode_sessions", session_id)
        if session is None:
            raise ApiError(409, "23503", "session does not exist")
        return session["user_id"]

    def _fn_append_message(self, p_message: Row, p_parts: list[Row]) -> None:
        user = self._session_user(p_message["session_id"])
        self.db.insert("opencode_messages", {**p_message, "user_id": user})
        for part in p_parts:
            self.db.insert("opencode_message_parts", {**part, "user_id": user})
        key = (p_message["session_id"],)
        session = self.db.tables["opencode_sessions"][key]
        self.db.update(
            "opencode_sessions",
            key,
            {"message_count": session["message_count"] + 1, "updated_at": now()},
        )

    def _fn_delete_message(self, p_session_id: str, p_message_id: str) -> bool:
        row = self.db.get("opencode_messages", p_message_id)
        if row is None or row["session_id"] != p_session_id:
            return False
        self._drop_files_of(p_session_id, lambda m: m["id"] == p_message_id)
        self.db.delete("opencode_messages", (p_message_id,))
        key = (p_session_id,)
        session = self.db.tables["opencode_sessions"][key]
        self.db.update(
            "opencode_sessions",
            key,
            {"message_count": session["message_count"] - 1, "updated_at": now()},
        )
        return True

    def _drop_files_of(self, session_id: str, doomed: Callable[[Row], bool]) -> None:
        """The files the parts of the ``doomed`` messages name and no other message of the
        session names go (the first DELETE of opencode_delete_message and commit_revert)."""
        fate = {m["id"]: doomed(m) for m in self._messages_of(session_id)}
        named: dict[bool, set[str]] = {True: set(), False: set()}
        for part in self.db.tables["opencode_message_parts"].values():
            file_id = (part.get("metadata") or {}).get("file_id")
            if part["message_id"] in fate and part["type"] == "file" and file_id is not None:
                named[fate[part["message_id"]]].add(file_id)
        for file_id in named[True] - named[False]:
            if self.db.get("opencode_message_files", session_id, file_id) is not None:
                self.db.delete("opencode_message_files", (session_id, file_id))

    def _after(self, session_id: str, message_id: str | None) -> Callable[[Row], bool] | None:
        """Whether a message of the session is at or after ``message_id`` (None: no message)."""
        cut = self.db.get("opencode_messages", message_id)
        if cut is None or cut["session_id"] != session_id:
            return None
        point = (cut["created_at"], cut["id"])
        return lambda m: (m["created_at"], m["id"]) >= point

    def _messages_of(self, session_id: str) -> list[Row]:
        rows = self.db.tables["opencode_messages"].values()
        return [m for m in rows if m["session_id"] == session_id]

    def _fn_fork_session(
        self, p_source: str, p_fork: Row, p_upto: str | None, p_tag: str, p_user: str | None
    ) -> int:
        source = self.db.get("opencode_sessions", p_source)
        if source is None or (p_user is not None and source["user_id"] != p_user):
            return -1
        visible = [m for m in self._messages_of(p_source) if not m.get("reverted")]
        if p_upto is not None:
            after = self._after(p_source, p_upto)
            if after is None or not any(m["id"] == p_upto for m in visible):
                return -1
            visible = [m for m in visible if not after(m) or m["id"] == p_upto]
        fork_id, user = p_fork["id"], p_fork.get("user_id")

        def copy(value: str | None) -> str | None:
            return None if value is None else value[:30] + p_tag

        self.db.insert("opencode_sessions", dict(p_fork))
        ids = {m["id"] for m in visible}
        for m in visible:
            status = "interrupted" if m["status"] in ("queued", "running") else m["status"]
            self.db.insert(
                "opencode_messages",
                {
                    **m,
                    "id": copy(m["id"]),
                    "session_id": fork_id,
                    "user_id": user,
                    "status": status,
                    "parent_id": copy(m.get("parent_id")),
                    "reverted": False,
                },
            )
        for part in list(self.db.tables["opencode_message_parts"].values()):
            if part["message_id"] in ids:
                self.db.insert(
                    "opencode_message_parts",
                    {
                        **part,
                        "id": copy(part["id"]),
                        "message_id": copy(part["message_id"]),
                        "session_id": fork_id,
                        "user_id": user,
                    },
                )
        todos = self.db.get("opencode_todos", p_source)
        if todos is not None:
            self.db.insert("opencode_todos", {**todos, "session_id": fork_id, "user_id": user})
        state = self.db.get("opencode_compaction", p_source)
        if state is not None:
            self.db.insert(
                "opencode_compaction",
                {
                    **state,
                    "session_id": fork_id,
                    "user_id": user,
                    "status": "idle",
                    "last_error": None,
                },
            )
        self.db.update("opencode_sessions", (fork_id,), {"message_count": len(visible)})
        return len(visible)

    def _fn_revert_session(self, p_session_id: str, p_message: str | None) -> bool:
        if self.db.get("opencode_sessions", p_session_id) is None:
            return False
        after = None if p_message is None else self._after(p_session_id, p_message)
        if p_message is not None and after is None:
            return False
        for m in self._messages_of(p_session_id):
            if m["status"] in ("queued", "running") and after is not None:
                continue
            hidden = after is not None and after(m)
            self.db.update("opencode_messages", (m["id"],), {"reverted": hidden})
        self.db.update(
            "opencode_sessions",
            (p_session_id,),
            {"revert_message_id": p_message, "updated_at": now()},
        )
        return True

    def _fn_commit_revert(self, p_session_id: str, p_from: str | None) -> int:
        after = None if p_from is None else self._after(p_session_id, p_from)

        def doomed(m: Row) -> bool:
            finished = m["status"] not in ("queued", "running")
            return bool(m.get("reverted")) or (after is not None and finished and after(m))

        self._drop_files_of(p_session_id, doomed)
        deleted = 0
        for m in self._messages_of(p_session_id):
            if doomed(m):
                self.db.delete("opencode_messages", (m["id"],))
                deleted += 1
        session = self.db.get("opencode_sessions", p_session_id)
        if session is not None:
            self.db.update(
                "opencode_sessions",
                (p_session_id,),
                {
                    "revert_message_id": None,
                    "updated_at": now(),
                    "message_count": session["message_count"] - deleted,
                },
            )
        return deleted

    def _fn_add_daily_cost(self, p_user_id: str, p_day: str, p_cost: float) -> float:
        row = self.db.get("opencode_usage", p_user_id, p_day)
        if row is None:
            zero = (
                "input_tokens",
                "output_tokens",
                "requests",
                "reserved_tokens",
                "reserved_requests",
            )
            row = self.db.insert(
                "opencode_usage", {"user_id": p_user_id, "day": p_day, **dict.fromkeys(zero, 0)}
            )
        total = float(row.get("cost") or 0) + p_cost
        self.db.update("opencode_usage", (p_user_id, p_day), {"cost": total})
        return total

    def _fn_upsert_parts(self, p_parts: list[Row]) -> None:
        if not p_parts:
            return
        user = (self.db.get("opencode_sessions", p_parts[0]["session_id"]) or {}).get("user_id")
        for part in p_parts:
            self.db.insert("opencode_message_parts", {**part, "user_id": user}, merge=True)

    def _fn_save_step(
        self, p_message: Row, p_parts: list[Row], p_usage: Row, p_cost: float
    ) -> None:
        session_id = p_message["session_id"]
        user = self._session_user(session_id)
        before = self.db.get("opencode_messages", p_message["id"])
        kept = (
            {
                k: before[k]
                for k in ("session_id", "role", "created_at", "parent_id", "compacted", "summary")
            }
            if before
            else {}
        )
        steps = before["step_count"] if before else 0
        self.db.insert(
            "opencode_messages",
            {**p_message, **kept, "user_id": user, "step_count": steps + 1},
            merge=True,
        )
        self._fn_upsert_parts(p_parts)
        session = self.db.tables["opencode_sessions"][(session_id,)]
        self.db.update(
            "opencode_sessions",
            (session_id,),
            {
                "total_cost": session["total_cost"] + p_cost,
                "total_input_tokens": session["total_input_tokens"] + p_usage["input_tokens"],
                "total_output_tokens": session["total_output_tokens"] + p_usage["output_tokens"],
                "message_count": session["message_count"] + (1 if before is None else 0),
                "updated_at": now(),
            },
        )
        key = (session_id, p_message.get("provider_id") or "", p_message.get("model_id") or "")
        cost = self.db.get("opencode_session_costs", *key) or {
            "session_id": key[0],
            "user_id": user,
            "provider_id": key[1],
            "model_id": key[2],
            "cost": 0.0,
            "input_tokens": 0,
            "output_tokens": 0,
            "reasoning_tokens": 0,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "messages": 0,
            "priced": True,
        }
        tokens = (
            "input_tokens",
            "output_tokens",
            "reasoning_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
        )
        self.db.insert(
            "opencode_session_costs",
            {
                **cost,
                **{t: cost[t] + p_usage[t] for t in tokens},
                "cost": cost["cost"] + p_cost,
                "messages": cost["messages"] + (1 if steps == 0 else 0),
                "priced": cost["priced"] and bool(p_message.get("priced", True)),
            },
            merge=True,
        )

    def _fn_apply_compaction(
        self, p_session_id: str, p_summary: Row, p_parts: list[Row], p_compacted_ids: list[str]
    ) -> None:
        self._fn_append_message(p_summary, p_parts)
        for mid in p_compacted_ids:
            row = self.db.get("opencode_messages", mid)
            if row is not None and row["session_id"] == p_session_id:
                self.db.update("opencode_messages", (mid,), {"compacted": True})
        state = self.db.get("opencode_compaction", p_session_id)
        self.db.insert(
            "opencode_compaction",
            {
                "session_id": p_session_id,
                "user_id": self._session_user(p_session_id),
                "status": "idle",
                "compaction_count": (state["compaction_count"] if state else 0) + 1,
                "last_compacted_at": now(),
                "last_error": None,
            },
            merge=True,
        )

    def _fn_reserve_usage(
        self,
        p_id: str,
        p_user_id: str,
        p_day: str,
        p_tokens: int,
        p_token_limit: int | None,
        p_request_limit: int | None,
    ) -> bool:
        key = (p_user_id, p_day)
        row = self.db.get("opencode_usage", *key) or self.db.insert(
            "opencode_usage",
            {
                "user_id": p_user_id,
                "day": p_day,
                "input_tokens": 0,
                "output_tokens": 0,
                "requests": 0,
                "reserved_tokens": 0,
                "reserved_requests": 0,
            },
        )
        used = row["input_tokens"] + row["output_tokens"] + row["reserved_tokens"]
        if p_token_limit is not None and used + p_tokens > p_token_limit:
            return False
        if (
            p_request_limit is not None
            and row["requests"] + row["reserved_requests"] + 1 > p_request_limit
        ):
            return False
        self.db.update(
            "opencode_usage",
            key,
            {
                "reserved_tokens": row["reserved_tokens"] + p_tokens,
                "reserved_requests": row["reserved_requests"] + 1,
            },
        )
        self.db.insert(
            "opencode_usage_reservations",
            {
                "id": p_id,
                "user_id": p_user_id,
                "day": p_day,
                "tokens": p_tokens,
                "requests": 1,
            },
        )
        return True

    def _fn_finish_reservation(
        self, p_id: str, p_input_tokens: int, p_output_tokens: int, p_count: bool
    ) -> None:
        if self.db.get("opencode_usage_reservations", p_id) is None:
            return
        r = self.db.delete("opencode_usage_reservations", (p_id,))
        key = (r["user_id"], r["day"])
        row = self.db.tables["opencode_usage"][key]
        self.db.update(
            "opencode_usage",
            key,
            {
                "reserved_tokens": row["reserved_tokens"] - r["tokens"],
                "reserved_requests": row["reserved_requests"] - r["requests"],
                "input_tokens": row["input_tokens"] + (p_input_tokens if p_count else 0),
                "output_tokens": row["output_tokens"] + (p_output_tokens if p_count else 0),
                "requests": row["requests"] + (r["requests"] if p_count else 0),
            },
        )

    def _fn_mark_interrupted(self, p_error: Row) -> int:
        marked = 0
        for key, row in list(self.db.tables["opencode_messages"].items()):
            if row["status"] in ("running", "queued"):
                self.db.update(
                    "opencode_messages", key, {"status": "interrupted", "error": p_error}
                )
                marked += 1
        for key, row in list(self.db.tables["opencode_sessions"].items()):
            if row["status"] == "busy":
                self.db.update("opencode_sessions", key, {"status": "idle"})
        return marked

    def _fn_add_webhook_deliveries(self, p_rows: list[Row]) -> None:
        for row in p_rows:
            if self.db.get("opencode_webhook_deliveries", row["id"]) is None:
                self.db.insert(
                    "opencode_webhook_deliveries", {**row, "locked_by": None, "locked_until": None}
                )

    def _fn_claim_webhook_deliveries(
        self, p_owner: str, p_now: str, p_until: str, p_limit: int
    ) -> list[Row]:
        # Timestamps are the store's fixed-width UTC strings: they compare as text.
        due = sorted(
            (
                row
                for row in self.db.tables["opencode_webhook_deliveries"].values()
                if row["status"] == "pending"
                and row["next_attempt_at"] is not None
                and row["next_attempt_at"] <= p_now
                and (row["locked_until"] is None or row["locked_until"] <= p_now)
            ),
            key=lambda row: (row["next_attempt_at"], row["id"]),
        )[:p_limit]
        return [
            self.db.update(
                "opencode_webhook_deliveries",
                (row["id"],),
                {"locked_by": p_owner, "locked_until": p_until},
            )
            for row in due
        ]
