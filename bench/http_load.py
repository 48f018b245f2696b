"""The closed-loop client of `bench.load` over HTTP/1.1: one prebuilt body, keep-alive connections.

Two client libraries, so their own cost can be compared (``python -m bench gateway
--http-client httpx``): aiohttp (the default: its HTTP parser is in C, so it takes
less client CPU per request, which on a 2-core machine is CPU left to the server
it measures) and httpx (pure-Python h11). Either keeps a pool of exactly
``concurrency`` keep-alive connections; the body and headers are built once,
and response bodies are read but not parsed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from bench.load import LoadResult, Send, closed_loop

CLIENTS = ("aiohttp", "httpx")


class HttpFailed(Exception):
    """A response whose status was not 200."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes


@contextlib.asynccontextmanager
async def http_sender(
    client: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    connections: int,
    timeout: float = 60.0,
) -> AsyncIterator[Send]:
    """A `Send` that POSTs ``body`` to ``url`` and fails unless the answer is 200."""
    if client == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=timeout), auto_decompress=False
        ) as session:

            async def send_aiohttp() -> bytes:
                async with session.post(url, data=body, headers=headers) as response:
                    content = await response.read()
                    if response.status != 200:
                        raise HttpFailed(f"HTTP {response.status}: {content[:200]!r}")
                    return content

            yield send_aiohttp
    elif client == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:

            async def send_httpx() -> bytes:
                response = await http.post(url, content=body, headers=headers)
                if response.status_code != 200:
                    raise HttpFailed(f"HTTP {response.status_code}: {response.content[:200]!r}")
                return response.content

            yield send_httpx
    else:
        raise ValueError(f"unknown HTTP client {client!r}; expected one of {', '.join(CLIENTS)}")


async def http_post_once(url: str, body: bytes, headers: Mapping[str, str], timeout: float = 60.0) -> HttpAnswer:
    """One POST (with aiohttp), to check an answer before measuring."""
    import aiohttp

    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return HttpAnswer(response.status, dict(response.headers), await response.read())


async def run_http_load(
    client: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
    watch_pids: Sequence[int] = (),
) -> LoadResult:
    """`bench.load.run_load` for HTTP: ``concurrency`` coroutines POSTing ``body`` on as many connections."""
    async with http_sender(client, url, body, headers, connections=concurrency) as send:
        return await closed_loop(send, concurrency=concurrency, seconds=seconds, warmup=warmup, watch_pids=watch_pids)
