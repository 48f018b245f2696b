"""Typed serving errors and the one table that maps them to wire codes.

Every layer raises a `ServingError` subclass with a *kind*: the OVMS status
name (for example ``MODEL_VERSION_MISSING``). The kind decides the OVMS base
message, the gRPC status code, the HTTP code and the OpenAI error type, so
the server and the gateway translate errors identically. The kind also
travels to the gateway in the trailing metadata key ``ERROR_KIND_KEY`` (`ovms_grpc_client.metadata`).

This module has no heavy imports (no grpc, no numpy): the server, the gateway and the Python
client use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ovms_grpc_client.metadata import ERROR_KIND_KEY

__all__ = ["ERROR_KIND_KEY", "KINDS", "STATUS_KINDS", "ErrorKind", "ServingError", "kind", "received_kind"]


@dataclass(frozen=True)
class ErrorKind:
    """How one kind of failure looks on each wire."""

    name: str
    """OVMS status name, e.g. ``MODEL_NAME_MISSING``."""
    message: str
    """OVMS base message; details follow after `` - ``."""
    grpc_code: str
    """Name of the ``grpc.StatusCode`` member."""
    http_status: int
    """HTTP status code used by the gateway."""
    openai_type: str = "invalid_request_error"
    """``error.type`` in OpenAI-style bodies."""


_KINDS = [
    ErrorKind("MODEL_NAME_MISSING", "Model with requested name is not found", "NOT_FOUND", 404, "not_found_error"),
    ErrorKind(
        "MODEL_VERSION_MISSING", "Model with requested version is not found", "NOT_FOUND", 404, "not_found_error"
    ),
    ErrorKind(
        "MODEL_VERSION_NOT_LOADED_ANYMORE",
        "Model with requested version is retired",
        "NOT_FOUND",
        404,
        "not_found_error",
    ),
    ErrorKind(
        "MODEL_VERSION_NOT_LOADED_YET",
        "Model with requested version is not loaded yet",
        "UNAVAILABLE",
        404,
        "not_found_error",
    ),
    ErrorKind("MODEL_VERSION_INVALID_FORMAT", "invalid model version format in request", "INVALID_ARGUMENT", 400),
    ErrorKind("INVALID_NO_OF_INPUTS", "Invalid number of inputs", "INVALID_ARGUMENT", 400),
    ErrorKind("INVALID_MISSING_INPUT", "Missing input with specific name", "INVALID_ARGUMENT", 400),
    ErrorKind("INVALID_UNEXPECTED_INPUT", "Unexpected input name", "INVALID_ARGUMENT", 400),
    ErrorKind("INVALID_MISSING_OUTPUT", "Missing output with specific name", "INVALID_ARGUMENT", 400),
    ErrorKind("INVALID_NO_OF_SHAPE_DIMENSIONS", "Invalid number of shape dimensions", "INVALID_ARGUMENT", 400),
    ErrorKind("INVALID_BATCH_SIZE", "Invalid input batch size", "INVALID_ARGUMENT", 400),
    ErrorKind("INVALID_SHAPE", "Invalid input shape", "INVALID_ARGUMENT", 400),
    ErrorKind("INVALID_PRECISION", "Invalid input precision", "INVALID_ARGUMENT", 400),
    ErrorKind("INVALID_CONTENT_SIZE", "Invalid content size of tensor proto", "INVALID_ARGUMENT", 400),
    ErrorKind("INVALID_VALUE_COUNT", "Invalid number of values in tensor proto container", "INVALID_ARGUMENT", 400),
    ErrorKind("INVALID_MESSAGE_STRUCTURE", "Invalid message structure", "INVALID_ARGUMENT", 400),
    ErrorKind("INVALID_ARGUMENT", "Invalid argument", "INVALID_ARGUMENT", 400),
    ErrorKind("INVALID_SIGNATURE_DEF", "Invalid signature name", "INVALID_ARGUMENT", 400),
    ErrorKind(
        "UNSUPPORTED_LAYOUT",
        "Received binary image input but resource not configured to accept NHWC layout",
        "INVALID_ARGUMENT",
        400,
    ),
    ErrorKind("INVALID_NO_OF_CHANNELS", "Invalid number of channels in binary input", "INVALID_ARGUMENT", 400),
    ErrorKind(
        "BINARY_IMAGES_RESOLUTION_MISMATCH",
        "Binary input images for this endpoint are required to have the same resolution",
        "INVALID_ARGUMENT",
        400,
    ),
    ErrorKind("BYTES_CONTENTS_EMPTY", "Bytes contents is empty", "INVALID_ARGUMENT", 400),
    ErrorKind("IMAGE_PARSING_FAILED", "Image parsing failed", "INVALID_ARGUMENT", 400),
    ErrorKind("METRICS_DISABLED", "Metrics are not enabled", "FAILED_PRECONDITION", 400),
    ErrorKind("JSON_INVALID", "The file is not valid json", "FAILED_PRECONDITION", 412),
    ErrorKind("RESOURCE_EXHAUSTED", "Too many requests", "RESOURCE_EXHAUSTED", 429, "rate_limit_error"),
    ErrorKind("REQUEST_TOO_LARGE", "Request is too large", "RESOURCE_EXHAUSTED", 413),
    ErrorKind("DEADLINE_EXCEEDED", "Deadline exceeded", "DEADLINE_EXCEEDED", 504, "timeout_error"),
    ErrorKind("NOT_IMPLEMENTED", "Not implemented", "UNIMPLEMENTED", 501),
    ErrorKind("SERVER_NOT_READY", "Server is not ready", "UNAVAILABLE", 503, "server_error"),
    ErrorKind("ENGINE_UNAVAILABLE", "Generation engine is unavailable", "UNAVAILABLE", 503, "server_error"),
    ErrorKind(
        "CANNOT_COMPILE_MODEL_INTO_TARGET_DEVICE", "Cannot compile model into target device", "FAILED_PRECONDITION", 412
    ),
    ErrorKind("RESHAPE_ERROR", "Model could not be reshaped with requested shape", "FAILED_PRECONDITION", 412),
    ErrorKind("OV_INTERNAL_INFERENCE_ERROR", "Internal inference error", "INTERNAL", 500, "server_error"),
    ErrorKind("INTERNAL_ERROR", "Internal server error", "INTERNAL", 500, "server_error"),
    # HTTP-only conditions of the REST gateway (OVMS's REST status names).
    ErrorKind("REST_INVALID_URL", "Invalid request URL", "INVALID_ARGUMENT", 400),
    ErrorKind("REST_UNSUPPORTED_METHOD", "Unsupported method", "UNIMPLEMENTED", 406),
    ErrorKind("REST_NOT_FOUND", "Requested REST resource not found", "NOT_FOUND", 404, "not_found_error"),
    # Statuses that arrive without a kind: raised by gRPC itself, or by a peer that is not this server.
    ErrorKind("NOT_FOUND", "Not found", "NOT_FOUND", 404, "not_found_error"),
    ErrorKind("ALREADY_EXISTS", "Already exists", "ALREADY_EXISTS", 409),
    ErrorKind("FAILED_PRECONDITION", "Failed precondition", "FAILED_PRECONDITION", 412),
    ErrorKind("SERVER_UNAVAILABLE", "The model server is unavailable", "UNAVAILABLE", 503, "server_error"),
    ErrorKind("UNAUTHENTICATED", "Unauthenticated", "UNAUTHENTICATED", 401, "authentication_error"),
    ErrorKind("PERMISSION_DENIED", "Permission denied", "PERMISSION_DENIED", 403, "permission_error"),
    ErrorKind("CANCELLED", "Request cancelled", "CANCELLED", 499),
]

KINDS: dict[str, ErrorKind] = {kind.name: kind for kind in _KINDS}

#: The kind of a gRPC status that carries none (gRPC's own errors, a proxy's). A bare
#: RESOURCE_EXHAUSTED is gRPC refusing a message over its size limit (413): the server's own
#: overload always carries its kind, RESOURCE_EXHAUSTED (429). Other codes: INTERNAL_ERROR.
STATUS_KINDS: dict[str, str] = {
    "INVALID_ARGUMENT": "INVALID_ARGUMENT",
    "NOT_FOUND": "NOT_FOUND",
    "ALREADY_EXISTS": "ALREADY_EXISTS",
    "FAILED_PRECONDITION": "FAILED_PRECONDITION",
    "RESOURCE_EXHAUSTED": "REQUEST_TOO_LARGE",
    "UNIMPLEMENTED": "NOT_IMPLEMENTED",
    "UNAVAILABLE": "SERVER_UNAVAILABLE",
    "DEADLINE_EXCEEDED": "DEADLINE_EXCEEDED",
    "UNAUTHENTICATED": "UNAUTHENTICATED",
    "PERMISSION_DENIED": "PERMISSION_DENIED",
    "CANCELLED": "CANCELLED",
}


def kind(name: str) -> ErrorKind:
    """The table entry for ``name``. An unknown name is a bug where it is written (a unit test
    checks every literal kind in the code), so it raises rather than turning into INTERNAL."""
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown error kind {name!r}; the kinds are listed in ovms_grpc_client.errors") from None


def received_kind(name: str | None, grpc_code: str) -> ErrorKind:
    """The kind of a failure received from elsewhere: the one it names, else its status's."""
    if name in KINDS:
        return KINDS[name]
    return KINDS[STATUS_KINDS.get(grpc_code, "INTERNAL_ERROR")]


#: Details longer than this are cut. They echo what the client sent (an input name, a version
#: label), and a status message must stay well inside gRPC's 8 KB metadata limit, or the client
#: reads RESOURCE_EXHAUSTED "received metadata size exceeds soft limit" instead of the error.
MAX_DETAILS_CHARS = 1000


def bounded(text: str, limit: int = MAX_DETAILS_CHARS) -> str:
    """``text``, cut to ``limit`` characters with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


class ServingError(Exception):
    """Base of every error the server reports to a client.

    ``details`` names the problem (model, version, input, expected vs got), cut to
    `MAX_DETAILS_CHARS`; the wire message is the OVMS base message, `` - `` and the details.
    """

    default_kind = "INTERNAL_ERROR"

    def __init__(self, details: str = "", *, kind_name: str | None = None) -> None:
        self.kind = kind(kind_name or self.default_kind)
        self.details = bounded(details)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"{self.kind.message} - {self.details}" if self.details else self.kind.message


class InvalidArgument(ServingError):
    default_kind = "INVALID_ARGUMENT"


class ModelNotFound(ServingError):
    default_kind = "MODEL_NAME_MISSING"


class VersionNotFound(ServingError):
    default_kind = "MODEL_VERSION_MISSING"


class ModelNotReady(ServingError):
    default_kind = "MODEL_VERSION_NOT_LOADED_YET"


class Overloaded(ServingError):
    default_kind = "RESOURCE_EXHAUSTED"


class DeadlineExceeded(ServingError):
    default_kind = "DEADLINE_EXCEEDED"


class Unimplemented(ServingError):
    default_kind = "NOT_IMPLEMENTED"


class EngineDead(ServingError):
    default_kind = "ENGINE_UNAVAILABLE"


class LoadFailed(ServingError):
    default_kind = "CANNOT_COMPILE_MODEL_INTO_TARGET_DEVICE"


class Internal(ServingError):
    """Unexpected failure: the client sees only the base message, the log has the rest."""

    default_kind = "INTERNAL_ERROR"

    @property
    def message(self) -> str:
        return self.kind.message


def last_line(exc: BaseException) -> str:
    """The last non-empty line of an exception's message (OpenVINO puts its reason there)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
