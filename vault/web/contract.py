"""A service's HTTP contract, declared once: operations with typed parameters, request and reply models.

Each :class:`Operation` names its method, route, handler, parameter models, body model and reply model. The app's
router is built from the operations (:func:`add_operations`) and so is the service's OpenAPI 3.1 document
(:func:`openapi_document`), so the document names exactly the routes served, and describes exactly the bodies the
handlers decode (:func:`decode_body`, :func:`decode_params`) and encode (:func:`reply`). Models are msgspec
``Struct``s (C-accelerated validation and JSON; measured on the secret read in docs/performance.md); their
constraints (``Meta``: patterns, lengths, bounds) are the server's checks and the document's schema at once.

Why msgspec rather than hand-built dicts: the hand-written documents drifted from the handlers (issue 28 found 41
contract mismatches); one definition cannot drift from itself.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import msgspec
from aiohttp import web

from vault.errors import BadRequest, TooLarge

from .common import MAX_BODY_BYTES, UNADVERTISED_METHODS
from .models import Error

__all__ = [
    "ERRORS",
    "Operation",
    "Response",
    "add_operations",
    "decode_body",
    "decode_params",
    "openapi_document",
    "reply",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")

# A message from the decoder names the field and the rule; long ones (an enum of many values) are cut.
_MAX_MESSAGE = 300

ERRORS: Final = (400, 401, 403, 404, 405, 409, 413, 415, 429, 503)
"""The error statuses an operation declares unless it says otherwise: each one's body is :class:`Error`."""

_ENCODER = msgspec.json.Encoder()
_SCHEMA_REF = "#/components/schemas/{name}"
# aiohttp's ``{name:regex}`` route variables (the regex may hold ``{m,n}``); the OpenAPI path keeps ``{name}``.
_ROUTE_VARIABLE = re.compile(r"\{(\w+):(?:[^{}]|\{[^{}]*\})+\}")


@dataclass(frozen=True, slots=True)
class Response:
    """A documented reply: its model (``None``: no body; a tuple: any one of those), media type and description."""

    model: Any = None
    media: str = "application/json"
    description: str = "success"


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One route of the service, as served and as documented.

    ``route`` is aiohttp's (``{name:[A-Za-z0-9._/-]+}`` for a variable that spans segments); the document shows it
    as ``{name}``. ``path`` and ``query`` are Structs whose fields are the path and query parameters, ``body`` the
    request body's Struct (or a union of tagged Structs, or a tuple of those: any one of them); ``responses`` maps
    each success status (or range, ``"2XX"``) to its :class:`Response` (errors come from ``errors``, all
    :class:`vault.web.models.Error` unless ``error_model`` says otherwise). ``security`` lists the alternatives of
    the document's security schemes, ``()`` for a public route (``""`` among them: the credential is optional).
    ``aliases`` are methods OpenAPI 3.1 cannot name (the Vault API's ``LIST``): they reach this operation's handler
    too, and, since the document cannot list them, a 405's ``Allow`` does not either (docs/vault-compat.md).
    """

    method: str
    route: str
    handler: Handler
    id: str
    summary: str
    responses: Mapping[Any, Response]  # a status (200) or a range ("2XX")
    path: type | None = None
    query: type | None = None
    body: Any = None  # a Struct, or Annotated[Struct, Meta(extra_json_schema=...)] for cross-field rules
    body_media: str = "application/json"
    body_required: bool = True
    security: tuple[str, ...] = ()
    errors: tuple[int, ...] = ERRORS
    error_model: type = Error
    description: str | None = None
    tags: tuple[str, ...] = field(default=())
    aliases: tuple[str, ...] = ()

    @property
    def openapi_path(self) -> str:
        return _ROUTE_VARIABLE.sub(r"{\1}", self.route)


def add_operations(router: web.UrlDispatcher, operations: Iterable[Operation]) -> None:
    """Route each operation (in the order given: aiohttp tries routes in registration order)."""
    for op in operations:
        router.add_route(op.method, op.route, op.handler)
        for alias in op.aliases:
            # The 405 renderer leaves these out of ``Allow``, as the document does (it cannot name them).
            assert alias in UNADVERTISED_METHODS, f"{alias} must be in common.UNADVERTISED_METHODS"
            router.add_route(alias, op.route, op.handler)


# -- decoding -------------------------------------------------------------------------------


def _message(exc: msgspec.ValidationError, where: str) -> str:
    text = str(exc)
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "..."
    return f"{where}: {text}"


async def read_body(request: web.Request, *, max_bytes: int = MAX_BODY_BYTES) -> bytes:
    """The request's body, whole, refused past ``max_bytes`` (413) whatever its ``Content-Length`` says."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise TooLarge(f"request body is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    # ``content.read(n)`` alone returns what has arrived so far, only the beginning of a body sent in pieces.
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"request body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _integral_floats_as_ints(value: Any) -> bool:
    """Turn every float of ``value`` that is a whole number (``2.0``) into an int, in place; whether any was."""
    changed = False
    stack = [value]
    while stack:  # not recursive: the decoder lets nesting deeper than Python's recursion limit through
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, item in items:
            if isinstance(item, float):
                if item.is_integer():
                    node[key] = int(item)
                    changed = True
            elif isinstance(item, dict | list):
                stack.append(item)
    return changed


def decode_json(raw: bytes, model: type[T]) -> T:
    """``raw`` as a JSON object of ``model``; anything else is a 400 that names the field and the rule.

    JSON Schema counts ``2.0`` as an integer and msgspec does not: a body refused by the typed decode is decoded
    again with its whole-number floats read as ints. Only a refused body pays for that; ``"5"`` stays refused.
    """
    if not raw.strip():
        raise BadRequest("request body must be a JSON object")
    try:
        return msgspec.json.decode(raw, type=model)
    except msgspec.ValidationError as exc:
        refused = exc
    except (msgspec.DecodeError, RecursionError):
        # Malformed JSON, text that is not UTF-8, lone surrogates, or nesting past the decoder's depth.
        raise BadRequest("request body is not valid JSON") from None
    try:
        # The typed decode stops at the first field it refuses: the rest may still be malformed.
        document = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        raise BadRequest("request body is not valid JSON") from None
    if isinstance(document, dict | list) and _integral_floats_as_ints(document):
        try:
            return msgspec.convert(document, type=model, strict=True)
        except msgspec.ValidationError as exc:
            refused = exc
    raise BadRequest(_message(refused, "request body")) from None


async def decode_body(request: web.Request, model: type[T], *, max_bytes: int = MAX_BODY_BYTES) -> T:
    """The request's JSON body as ``model`` (bounded; 400 naming the field and rule when it does not match)."""
    return decode_json(await read_body(request, max_bytes=max_bytes), model)


def decode_params(values: Mapping[str, str], model: type[T], where: str = "query") -> T:
    """Path or query parameters (strings) as ``model``: ``"5"`` becomes 5 where the field is an integer.

    A parameter named twice counts once (the first), as ``request.query.get`` reads it.
    """
    try:
        return msgspec.convert({k: values[k] for k in values}, type=model, strict=False)
    except msgspec.ValidationError as exc:
        raise BadRequest(_message(exc, f"{where} parameter")) from None


# -- encoding -------------------------------------------------------------------------------


def reply(
    model: Any, *, status: int = 200, headers: Mapping[str, str] | None = None, media: str = "application/json"
) -> web.Response:
    """``model`` (a Struct, or anything msgspec encodes) as the JSON reply."""
    return web.Response(body=_ENCODER.encode(model), status=status, content_type=media, headers=headers)


# -- the document -------------------------------------------------------------------------------


def _parameters(model: type, where: str, components: dict[str, Any]) -> list[dict[str, Any]]:
    (ref,), found = msgspec.json.schema_components([model], ref_template=_SCHEMA_REF)
    schema = found.pop(ref["$ref"].rsplit("/", 1)[1])
    components.update(found)
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        if where == "path":
            prop.pop("default", None)
        param: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": prop,
        }
        if description:
            param["description"] = description
        params.append(param)
    return params


def _alternatives(model: Any) -> tuple[Any, ...]:
    if model is None:
        return ()
    return model if isinstance(model, tuple) else (model,)


def openapi_document(
    *,
    title: str,
    version: str,
    server_url: str,
    operations: Iterable[Operation],
    security_schemes: Mapping[str, Any],
    description: str | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``, every schema generated from their models."""
    ops = list(operations)
    models: list[Any] = []
    for op in ops:
        models += _alternatives(op.body)
        models.append(op.error_model)
        models += [m for r in op.responses.values() for m in _alternatives(r.model)]
    refs, components = msgspec.json.schema_components(models, ref_template=_SCHEMA_REF)
    schema_of = dict(zip(map(id, models), refs, strict=True))

    def body_schema(model: Any) -> Any:
        # A body of several shapes (msgspec refuses a union of untagged Structs): anyOf their schemas.
        if isinstance(model, tuple):
            return {"anyOf": [schema_of[id(m)] for m in model]}
        return schema_of[id(model)]

    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        responses: dict[str, Any] = {}
        for status, response in op.responses.items():
            entry: dict[str, Any] = {"description": response.description}
            if response.model is not None:
                entry["content"] = {response.media: {"schema": body_schema(response.model)}}
            responses[str(status)] = entry
        for status in op.errors:
            responses.setdefault(
                str(status),
                {"description": "error", "content": {"application/json": {"schema": schema_of[id(op.error_model)]}}},
            )
        document: dict[str, Any] = {
            "operationId": op.id,
            "summary": op.summary,
            "responses": responses,
            # "" is the anonymous alternative ({}): the credential is optional.
            "security": [{name: []} if name else {} for name in op.security],
        }
        if op.description:
            document["description"] = op.description
        if op.tags:
            document["tags"] = list(op.tags)
        parameters = []
        if op.path is not None:
            parameters += _parameters(op.path, "path", components)
        if op.query is not None:
            parameters += _parameters(op.query, "query", components)
        if parameters:
            document["parameters"] = parameters
        if op.body is not None:
            document["requestBody"] = {
                "required": op.body_required,
                "content": {op.body_media: {"schema": body_schema(op.body)}},
            }
        method = op.method.lower()
        where = paths.setdefault(op.openapi_path, {})
        assert method not in where, f"{op.method} {op.openapi_path} is declared twice"
        where[method] = document

    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {
        "openapi": "3.1.0",
        "info": info,
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"securitySchemes": dict(security_schemes), "schemas": components},
    }
