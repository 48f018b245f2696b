"""gRPC metadata keys that the server, the REST gateway and clients agree on (one place for each)."""

from __future__ import annotations

#: Trailing metadata: the error kind of a failed call (``MODEL_NAME_MISSING``, ``INVALID_SHAPE``, ...),
#: so the gateway maps it to OVMS's HTTP code and clients can branch on it.
ERROR_KIND_KEY = "ovms-error-kind"

#: Request metadata the gateway sets on every call ("REST"), for the metrics' interface label; the
#: server trusts it only from a local peer (the gateway runs beside it).
INTERFACE_KEY = "x-ovms-interface"

#: Request metadata the gateway sets on generation calls: "Unary" when the HTTP client did not ask
#: for a stream (OVMS's method label), "Stream" when it did.
METHOD_KEY = "x-ovms-method"
