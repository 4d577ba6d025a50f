"""HTTP conventions shared by every route: JSON responses, errors, POST rules.

Routes raise ``HttpError`` (or TensorBoard's ``InvalidArgumentError`` /
``NotFoundError``) for user errors; ``json_route`` turns them into 4xx JSON
bodies ``{"error": message}``. POST bodies must be JSON, carry the header
``X-Requested-With: remap`` and be at most ``MAX_BODY_BYTES``.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any, Callable

from werkzeug import wrappers

MAX_BODY_BYTES = 1_048_576
CSRF_HEADER = "X-Requested-With"
CSRF_VALUE = "remap"
MAX_JSON_DEPTH = 64


class HttpError(Exception):
    """A user error with the status code to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def json_bytes(value: Any) -> bytes:
    """The compact JSON encoding every route answers with (NaN and inf as null)."""
    return json.dumps(_finite(value), separators=(",", ":"), allow_nan=False).encode("utf-8")


def json_response(value: Any, status: int = 200) -> wrappers.Response:
    body = json_bytes(value)
    response = wrappers.Response(body, status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def error_response(status: int, message: str) -> wrappers.Response:
    return json_response({"error": message}, status)


Handler = Callable[[wrappers.Request], wrappers.Response]


def json_route(methods: tuple[str, ...] = ("GET",)) -> Callable[[Callable[..., Any]], Handler]:
    """Decorate ``fn(request) -> JSON-ready value or Response`` into a WSGI route.

    Checks the method, turns ``HttpError`` and TensorBoard's public errors into
    JSON 4xx answers, and never leaks a traceback to the client.
    """

    def decorate(fn: Callable[..., Any]) -> Handler:
        @wrappers.Request.application
        @functools.wraps(fn)
        def route(request: wrappers.Request) -> wrappers.Response:
            if request.method not in methods:
                response = error_response(405, f"use {' or '.join(methods)} for this route")
                response.headers["Allow"] = ", ".join(methods)
                return response
            try:
                result = fn(request)
            except HttpError as e:
                return error_response(e.status, e.message)
            except Exception as e:  # TensorBoard's PublicError family carries its own code
                code = getattr(e, "http_code", None)
                if isinstance(code, int) and 400 <= code < 500:
                    return error_response(code, str(e))
                raise
            if isinstance(result, wrappers.Response):
                return result
            return json_response(result)

        return route

    return decorate


def read_json_body(request: wrappers.Request) -> Any:
    """The parsed JSON body of a POST, after the header, type and size checks."""
    if request.headers.get(CSRF_HEADER) != CSRF_VALUE:
        raise HttpError(403, f"POST requests need the header '{CSRF_HEADER}: {CSRF_VALUE}'")
    if request.mimetype != "application/json":
        raise HttpError(415 if request.mimetype else 400,
                        "POST bodies must be JSON with 'Content-Type: application/json'")
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise HttpError(413, f"body of {length:,} bytes is over the limit of {MAX_BODY_BYTES:,}")
    data = request.stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise HttpError(413, f"body is over the limit of {MAX_BODY_BYTES:,} bytes")
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise HttpError(400, f"body is not valid JSON: {str(e)[:200]}") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise HttpError(400, f"body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:  # JSON allows "\ud800", text files and event logs do not: refuse it here, not in a 500 later
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        bad = e.object[e.start:e.end].encode("unicode_escape").decode("ascii")
        raise HttpError(400, f"body holds {bad}, a lone UTF-16 surrogate, which is not text; "
                             "send valid Unicode strings") from None
    return value


def query_arg(request: wrappers.Request, name: str, required: bool = True, max_length: int = 2000) -> str | None:
    value = request.args.get(name)
    if value is None or value == "":
        if required:
            raise HttpError(400, f"missing query parameter '{name}'")
        return None
    if len(value) > max_length:
        raise HttpError(400, f"query parameter '{name}' is longer than {max_length} characters")
    return value


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in JSON")


def _depth(value: Any, limit: int = MAX_JSON_DEPTH + 1) -> int:
    """Nesting depth of a parsed JSON value (stops counting past ``limit``)."""
    depth, frontier = 0, [value]
    while frontier and depth <= limit:
        children = []
        for item in frontier:
            if isinstance(item, dict):
                children.extend(item.values())
            elif isinstance(item, list):
                children.extend(item)
        if not children:
            return depth
        depth += 1
        frontier = children
    return depth


def _finite(value: Any) -> Any:
    """Replace NaN/inf floats by None so responses are valid JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
