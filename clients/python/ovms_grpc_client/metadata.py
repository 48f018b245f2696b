"""gRPC metadata keys that the server, the REST gateway and clients agree on (one place for each)."""

from __future__ import annotations

import uuid

#: Trailing metadata: the error kind of a failed call (``MODEL_NAME_MISSING``, ``INVALID_SHAPE``, ...),
#: so the gateway maps it to OVMS's HTTP code and clients can branch on it.
ERROR_KIND_KEY = "ovms-error-kind"

#: Request metadata the gateway sets on every call ("REST"), for the metrics' interface label; the
#: server trusts it only from a local peer (the gateway runs beside it).
INTERFACE_KEY = "x-ovms-interface"

#: Request metadata the gateway sets on generation calls: "Unary" when the HTTP client did not ask
#: for a stream (OVMS's method label), "Stream" when it did.
METHOD_KEY = "x-ovms-method"

#: Request (and response) metadata, and HTTP header, carrying a request's identity.
REQUEST_ID_KEY = "x-request-id"
#: Longest client-chosen request id kept; a longer (or non-printable) one is replaced.
MAX_REQUEST_ID_LENGTH = 128


def request_id_or_new(given: str | None) -> str:
    """The client's request id when it is 1 to 128 printable ASCII characters, else a new uuid4 hex
    (one rule for the server and the gateway, so both ends name a request alike)."""
    if given and len(given) <= MAX_REQUEST_ID_LENGTH and all(" " <= char <= "~" for char in given):
        return given
    return uuid.uuid4().hex
