"""Route declarations and the OpenAPI 3.1 document built from them and their pydantic models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from opencode_api._version import __version__
from opencode_api.http._schemas import BudgetErrorResponse, ErrorResponse, QuotaErrorResponse

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REF = "#/components/schemas/{model}"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route: how aiohttp dispatches it and how OpenAPI describes it."""

    method: str
    path: str
    name: str
    handler: Handler
    summary: str
    tag: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = False
    response: Any = None  # a model, list[model], or None for a free-form object
    status: int = 200
    sse: bool = False
    text: str | None = None  # a non-JSON media type of the response
    errors: tuple[int, ...] = ()
    headers: tuple[str, ...] = field(default=())
    accepted: Any = None  # the model of a 202 answer (a turn sent to run in the background)


def route(
    method: str, path: str, *, name: str, summary: str, tag: str, **options: Any
) -> Callable[[Handler], RouteSpec]:
    def decorate(handler: Handler) -> RouteSpec:
        return RouteSpec(method, path, name, handler, summary, tag, **options)

    return decorate


def add_routes(app: web.Application, specs: list[RouteSpec]) -> None:
    for spec in specs:
        app.router.add_route(spec.method, spec.path, spec.handler, name=spec.name)


_ERROR_TEXT = {
    400: "Invalid request (unparsable body or parameter, a bad file part), the model's provider "
    "is not configured (provider_not_configured, naming its variables), or the model cannot take "
    "the message's files (unsupported_input, naming it)",
    401: "Authentication required or invalid",
    404: "Not found",
    409: "The session is busy (busy=reject)",
    413: "Request body too large (CLIENT_MAX_SIZE; on the message routes, more than "
    "MAX_INPUT_BYTES of decoded files)",
    422: "Invalid request (a field failed validation)",
    429: "Daily quota exceeded (quota_exceeded: usage, limits, resets_at), budget spent "
    "(budget_exceeded: spent, limit) or the session's mailbox is full (mailbox_full)",
    502: "The provider rejected the credentials or refused the request",
    503: "Unavailable right now (the store or the provider is down, overloaded or shutting "
    "down); see Retry-After",
}
# Routes that call a model provider themselves (the turn stream reports failures as events).
_PROVIDER_ROUTES = frozenset({"generate_title", "compact_session"})


class _Schemas:
    """Collects component schemas; every model is referenced by name."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, annotation: Any) -> dict[str, Any]:
        schema = TypeAdapter(annotation).json_schema(ref_template=REF, mode="serialization")
        for name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(name, definition)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            self.components.setdefault(annotation.__name__, schema)
            return {"$ref": REF.format(model=annotation.__name__)}
        return schema

    def request_ref(self, model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=REF, mode="validation")
        for name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(name, definition)
        self.components.setdefault(model.__name__, schema)
        return {"$ref": REF.format(model=model.__name__)}


def _parameters(spec: RouteSpec) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for segment in spec.path.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            string = {"type": "string"}
            params.append({"name": segment[1:-1], "in": "path", "required": True, "schema": string})
    if spec.query is not None:
        schema = spec.query.model_json_schema(mode="validation")
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = dict(prop)
            description = prop.pop("description", None)
            prop.pop("title", None)
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": prop,
            }
            if description:
                param["description"] = description
            params.append(param)
    for header in spec.headers:
        params.append(
            {"name": header, "in": "header", "required": False, "schema": {"type": "string"}}
        )
    return params


def _sse_description(spec: RouteSpec) -> str:
    if spec.name == "events":
        return (
            "Server-Sent Events: first `server.connected`, then `{type, properties}` frames; "
            "`: ping` comments keep the stream open."
        )
    return (
        "Server-Sent Events: `id: <seq>`, `event: <type>`, `data: <JSON event>` frames; after "
        "`done` or `error` a final `data: [DONE]` frame; `: ping` comments keep the stream open."
    )


# The event types of a turn stream (API.md); "message" is the SSE default of the final
# `data: [DONE]` frame, which has no `event:` line.
TURN_EVENT_TYPES = (
    "message_start",
    "step_start",
    "reasoning",
    "text",
    "tool_call",
    "tool_result",
    "question",
    "step_finish",
    "done",
    "error",
    "message",
)


def _sse_frame_schema(spec: RouteSpec) -> dict[str, Any]:
    """One SSE frame as OpenAPI 3.1 describes an event stream's items: ``{id, event, data}``."""
    if spec.name == "events":
        event: dict[str, Any] = {"type": "string", "const": "message"}
        data = {
            "type": "string",
            "contentMediaType": "application/json",
            "description": 'A JSON object `{"type": "...", "properties": {...}}`.',
        }
    else:
        event = {"type": "string", "enum": list(TURN_EVENT_TYPES)}
        data = {
            "type": "string",
            "description": "The event as a JSON object (`type`, `session_id`, `message_id`, "
            "...), or `[DONE]` in the final frame.",
        }
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "event": event,
            "data": data,
            "retry": {"type": "integer"},
        },
    }


def build_openapi(specs: list[RouteSpec], *, security: bool = True) -> dict[str, Any]:
    schemas = _Schemas()
    error_ref = schemas.ref(ErrorResponse)
    # A 429 is one of three bodies: quota_exceeded, budget_exceeded, mailbox_full.
    too_many = {
        "anyOf": [
            schemas.ref(QuotaErrorResponse),
            schemas.ref(BudgetErrorResponse),
            error_ref,
        ]
    }
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        operation: dict[str, Any] = {
            "operationId": spec.name,
            "summary": spec.summary,
            "tags": [spec.tag],
        }
        params = _parameters(spec)
        if params:
            operation["parameters"] = params
        if spec.body is not None:
            operation["requestBody"] = {
                "required": spec.body_required,
                "content": {"application/json": {"schema": schemas.request_ref(spec.body)}},
            }
        responses: dict[str, Any] = {}
        if spec.sse:
            responses[str(spec.status)] = {
                "description": _sse_description(spec),
                "content": {"text/event-stream": {"schema": _sse_frame_schema(spec)}},
            }
        elif spec.text is not None:
            responses[str(spec.status)] = {
                "description": "OK",
                "content": {spec.text: {"schema": {"type": "string"}}},
            }
        else:
            schema = schemas.ref(spec.response) if spec.response is not None else {"type": "object"}
            responses[str(spec.status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": schema}},
            }
        if spec.accepted is not None:
            responses["202"] = {
                "description": "Accepted: the turn runs in the background (`stream=false` or "
                "`Prefer: respond-async`)",
                "content": {"application/json": {"schema": schemas.ref(spec.accepted)}},
            }
        codes = set(spec.errors)
        if spec.path != "/health":
            codes.add(401)
        if spec.tag not in ("service", "providers"):
            codes.add(503)  # every route that reaches the store: the store may be down
        if spec.name in _PROVIDER_ROUTES:
            codes.update((400, 502, 503))  # API.md's provider failures
        for code in sorted(codes):
            ref = too_many if code == 429 else error_ref
            responses[str(code)] = {
                "description": _ERROR_TEXT.get(code, "Error"),
                "content": {"application/json": {"schema": ref}},
            }
        operation["responses"] = responses
        if spec.path == "/health":
            operation["security"] = []
        paths.setdefault(spec.path, {})[spec.method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "opencode-api",
            "version": __version__,
            "description": "An actor-based LLM agent API server: sessions, turns streamed as "
            "Server-Sent Events, tools, cost and quota.",
        },
        "paths": paths,
        "components": {"schemas": dict(sorted(schemas.components.items()))},
    }
    if security:
        document["components"]["securitySchemes"] = {
            "basic": {"type": "http", "scheme": "basic"},
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        }
        document["security"] = [{}, {"basic": []}, {"bearer": []}]
    return document
