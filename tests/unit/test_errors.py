import re
from pathlib import Path

import grpc
import pytest

from ovms_grpc_client import errors


def all_error_classes() -> list[type[errors.ServingError]]:
    found, pending = [], [errors.ServingError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("kind", list(errors.KINDS.values()), ids=lambda k: k.name)
def test_every_kind_maps_to_a_real_grpc_code_and_http_status(kind: errors.ErrorKind) -> None:
    assert isinstance(grpc.StatusCode[kind.grpc_code], grpc.StatusCode)
    assert 400 <= kind.http_status <= 599
    assert kind.message and not kind.message.endswith(".")
    assert kind.openai_type.endswith("_error")


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_has_a_kind_in_the_table(cls: type[errors.ServingError]) -> None:
    assert cls.default_kind in errors.KINDS
    error = cls("some detail")
    assert error.kind is errors.KINDS[cls.default_kind]


def test_message_is_ovms_base_then_details() -> None:
    error = errors.VersionNotFound('model "dummy" version 3 not found (available versions: 1, 2)')
    assert error.message == (
        'Model with requested version is not found - model "dummy" version 3 not found (available versions: 1, 2)'
    )
    assert grpc.StatusCode[error.kind.grpc_code] == grpc.StatusCode.NOT_FOUND
    assert error.kind.http_status == 404


def test_not_loaded_yet_is_unavailable_on_grpc_and_404_on_rest() -> None:
    error = errors.ModelNotReady("x")
    assert (error.kind.grpc_code, error.kind.http_status) == ("UNAVAILABLE", 404)


def test_internal_errors_never_carry_details_to_the_client() -> None:
    error = errors.Internal("Traceback (most recent call last): secret")
    assert error.message == "Internal server error"


def test_an_unknown_kind_name_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown error kind 'NO_SUCH_KIND'"):
        errors.kind("NO_SUCH_KIND")
    with pytest.raises(KeyError):
        errors.InvalidArgument("x", kind_name="INVALID_SHAPES")


def test_a_received_kind_falls_back_to_its_status() -> None:
    assert errors.received_kind("MODEL_NAME_MISSING", "NOT_FOUND") is errors.KINDS["MODEL_NAME_MISSING"]
    assert errors.received_kind("FROM_A_NEWER_SERVER", "NOT_FOUND") is errors.KINDS["NOT_FOUND"]
    assert errors.received_kind(None, "RESOURCE_EXHAUSTED").http_status == 413  # gRPC's own size limit
    assert errors.received_kind(None, "DATA_LOSS") is errors.KINDS["INTERNAL_ERROR"]


def test_every_status_kind_is_in_the_table_with_that_status() -> None:
    for code, name in errors.STATUS_KINDS.items():
        assert errors.KINDS[name].grpc_code == code


ROOT = Path(__file__).resolve().parents[2]
#: Places in the code that name a kind as a string literal.
LITERAL_KIND = re.compile(r"""(?:kind_name=|HttpError\(\s*|kind\(|default_kind = )["']([A-Z_]+)["']""")


def test_every_kind_named_in_the_code_is_in_the_table() -> None:
    """Kinds are names in one table: a misspelt one fails here, not as a wrong status at run time."""
    sources = [
        p
        for folder in ("ovms_grpc", "gateway", "clients/python/ovms_grpc_client")
        for p in (ROOT / folder).rglob("*.py")
    ]
    named = {
        (path.relative_to(ROOT).as_posix(), name) for path in sources for name in LITERAL_KIND.findall(path.read_text())
    }
    assert len(named) > 30  # the pattern still finds them
    unknown = sorted((path, name) for path, name in named if name not in errors.KINDS)
    assert not unknown, unknown
