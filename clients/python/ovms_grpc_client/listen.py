"""Opening TCP listeners with errors a person can act on.

grpc's own bind failure says only "set GRPC_VERBOSITY=debug ..."; uvicorn's prints a traceback
first. Both processes check or open their ports through here, so a port in use is one line:
``cannot listen on 0.0.0.0:9000: address already in use``. No heavy imports: the gateway uses it.
"""

from __future__ import annotations

import socket


def _reason(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def open_listener(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port``; OSError with a readable message when that fails.

    SO_REUSEADDR as grpc and uvicorn set it, so a port held only by TIME_WAIT connections of an
    earlier run is free, while one another process listens on is not.
    """
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise OSError(f"cannot listen on {where}: unknown address ({_reason(exc)})") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {where}: {_reason(exc)}") from exc
    return sock


def bind_error(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on now, or None when it can (port 0 always can)."""
    if port == 0:
        return None
    try:
        open_listener(host, port, backlog=1).close()
    except OSError as exc:
        return str(exc)
    return None
