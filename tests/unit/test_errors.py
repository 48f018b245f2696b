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


def test_unknown_kind_falls_back_to_internal() -> None:
    assert errors.kind("NO_SUCH_KIND") is errors.KINDS["INTERNAL_ERROR"]
