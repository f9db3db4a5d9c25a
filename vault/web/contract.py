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

import functools
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, cast

import msgspec
import msgspec.inspect
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


# Where the typed decoder refused a float: ``$.options.cas``, ``$.versions[3]`` (a dict's key shows as ``[...]``).
_FLOAT_AT = re.compile(r".*got `float` - at `\$((?:\.\w+|\[\d+\]|\[\.\.\.\])*)`", re.DOTALL)
_STEP = re.compile(r"\.(\w+)|\[(\d+)\]|(\[\.\.\.\])")
_ANY_KEY = "[...]"


def _float_refused_at(exc: msgspec.ValidationError) -> list[str | int] | None:
    found = _FLOAT_AT.fullmatch(str(exc))
    if found is None:
        return None
    return [name or (_ANY_KEY if key else int(index)) for name, index, key in _STEP.findall(found.group(1))]


def _whole_floats_as_ints(node: Any) -> bool:
    """Every whole-number float below ``node`` (a typed map's values, whose key the decoder does not name) as an
    int, in place; whether any was."""
    changed = False
    stack = [node]
    while stack:  # not recursive: the decoder lets nesting deeper than Python's recursion limit through
        here = stack.pop()
        for key, item in here.items() if isinstance(here, dict) else enumerate(here):
            if isinstance(item, float) and item.is_integer():
                here[key] = int(item)
                changed = True
            elif isinstance(item, dict | list):
                stack.append(item)
    return changed


def _whole_float_as_int(document: Any, path: list[str | int]) -> bool:
    """Turn the float at ``path`` into an int if it is a whole number; whether it was."""
    node = document
    for n, step in enumerate(path):
        if step == _ANY_KEY:
            return isinstance(node, dict) and _whole_floats_as_ints(node)
        if n == len(path) - 1:
            break
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return False
    try:
        value = node[path[-1]]
    except (KeyError, IndexError, TypeError):
        return False
    if not isinstance(value, float) or not value.is_integer():
        return False
    node[path[-1]] = int(value)
    return True


def decode_json(raw: bytes, model: type[T]) -> T:
    """``raw`` as a JSON object of ``model``; anything else is a 400 that names the field and the rule.

    JSON Schema counts ``2.0`` as an integer and msgspec does not: where the typed decode refuses a whole-number
    float for an integer field, that one value is read as an int and the body checked again (free-form values, a
    Vault secret's ``data``, keep their floats). Only a refused body pays for that; ``"5"`` stays refused.
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
    path = _float_refused_at(refused)
    if path is None:
        raise BadRequest(_message(refused, "request body"))
    try:
        # The typed decode stops at the first field it refuses: the rest may still be malformed.
        document = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        raise BadRequest("request body is not valid JSON") from None
    # One refused float at a time; a body holds at most MAX_BODY_BYTES, so at most that many numbers.
    while path is not None and _whole_float_as_int(document, path):
        try:
            return msgspec.convert(document, type=model, strict=True)
        except msgspec.ValidationError as exc:
            refused = exc
        path = _float_refused_at(refused)
    raise BadRequest(_message(refused, "request body")) from None


async def decode_body(request: web.Request, model: type[T], *, max_bytes: int = MAX_BODY_BYTES) -> T:
    """The request's JSON body as ``model`` (bounded; 400 naming the field and rule when it does not match)."""
    return decode_json(await read_body(request, max_bytes=max_bytes), model)


@functools.cache
def _integer_fields(model: type) -> frozenset[str]:
    def is_int(kind: msgspec.inspect.Type) -> bool:
        if isinstance(kind, msgspec.inspect.UnionType):
            return any(is_int(k) for k in kind.types)
        return isinstance(kind, msgspec.inspect.IntType)

    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType), model
    return frozenset(f.encode_name for f in info.fields if is_int(f.type))


_INTEGER_TEXT = re.compile(r"-?[0-9]+")


def decode_params(values: Mapping[str, str], model: type[T], where: str = "query") -> T:
    """Path or query parameters (strings) as ``model``: ``"5"`` becomes 5 where the field is an integer.

    An integer is written in decimal digits (``int()``'s reading, not msgspec's lax one, which takes ``"1e3"`` and
    ``"7.0"``). A parameter named twice counts once (the first), as ``request.query.get`` reads it.
    """
    given = {k: values[k] for k in values}
    for name in _integer_fields(cast(type, model)) & given.keys():
        if not _INTEGER_TEXT.fullmatch(given[name]):
            raise BadRequest(f"{where} parameter {name!r} must be an integer in decimal digits")
    try:
        return msgspec.convert(given, type=model, strict=False)
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
