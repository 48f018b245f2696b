"""Small shared pieces of the HTTP side: JSON answers and bounded body reads."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.http_errors import HttpError


def json_response(document: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status_code=status, media_type="application/json")


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 past the gateway's limit (checked before and while reading)."""
    limit: int = request.app.state.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError("REQUEST_TOO_LARGE", details=f"{declared} bytes; the limit is {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError("REQUEST_TOO_LARGE", details=f"more than {limit} bytes; the limit is {limit} bytes")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
