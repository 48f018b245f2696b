import argparse

import pytest

from ovms_grpc.cli import UsageError, build_config, build_parser, parse_channel_arguments
from ovms_grpc.devices import parse_plugin_config, validate_target_device
from ovms_grpc.models.manager import parse_version
from ovms_grpc.models.policy import VersionPolicy
from ovms_grpc_client.errors import InvalidArgument


@pytest.mark.parametrize(
    ("policy", "selected"),
    [
        ({"all": {}}, [1, 2, 5]),
        ({"latest": {}}, [5]),
        ({"latest": {"num_versions": 2}}, [2, 5]),
        ({"specific": {"versions": [1, 7]}}, [1]),
    ],
)
def test_version_policies(policy: dict, selected: list[int]) -> None:
    assert VersionPolicy.from_json(policy).select([5, 1, 2]) == selected


@pytest.mark.parametrize(
    "bad",
    [{}, {"all": {}, "latest": {}}, {"latest": {"num_versions": 0}}, {"specific": {"versions": []}}, {"x": {}}, []],
)
def test_bad_policies_are_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        VersionPolicy.from_json(bad)


@pytest.mark.parametrize(
    "device", ["CPU", "GPU", "GPU.1", "NPU", "AUTO", "AUTO:GPU,CPU", "HETERO:GPU,CPU", "MULTI:GPU,CPU", "BATCH:CPU(16)"]
)
def test_valid_devices(device: str) -> None:
    assert validate_target_device(device) == device


@pytest.mark.parametrize("device", ["cpu", "TPU", "HETERO:", "AUTO:", "BATCH:CPU(x)", "GPU.a", ""])
def test_invalid_devices(device: str) -> None:
    with pytest.raises(ValueError, match="is not a valid device"):
        validate_target_device(device)


def test_plugin_config_types() -> None:
    assert parse_plugin_config('{"NUM_STREAMS": 2, "PERFORMANCE_HINT": "LATENCY"}') == {
        "NUM_STREAMS": 2,
        "PERFORMANCE_HINT": "LATENCY",
    }
    with pytest.raises(ValueError, match="must be a string, number or boolean"):
        parse_plugin_config('{"X": {"nested": 1}}')


def test_channel_arguments() -> None:
    assert parse_channel_arguments("grpc.max_receive_message_length=100, grpc.x=abc") == (
        ("grpc.max_receive_message_length", 100),
        ("grpc.x", "abc"),
    )
    with pytest.raises(UsageError):
        parse_channel_arguments("novalue")


def test_version_strings() -> None:
    assert parse_version("") is None and parse_version("0") is None and parse_version("12") == 12
    with pytest.raises(InvalidArgument):
        parse_version("-1")


def config_from(*argv: str):
    args: argparse.Namespace = build_parser().parse_args(list(argv))
    return build_config(args)


def test_single_model_config(tmp_path) -> None:
    config = config_from(
        "--model_path", str(tmp_path), "--model_name", "m", "--port", "9001", "--nireq", "3",
        "--target_device", "AUTO:CPU", "--plugin_config", '{"PERFORMANCE_HINT":"THROUGHPUT"}',
        "--grpc_bind_address", "127.0.0.1,::1",
    )  # fmt: skip
    (model,) = config.models
    assert (model.name, model.base_path, model.load.nireq, model.load.target_device) == ("m", tmp_path, 3, "AUTO:CPU")
    assert model.load.plugin_config == {"PERFORMANCE_HINT": "THROUGHPUT"}
    assert model.version_policy == VersionPolicy("latest", 1)
    assert config.port == 9001 and config.bind_addresses == ("127.0.0.1", "::1")
    assert dict(config.grpc_options())["grpc.max_receive_message_length"] == 1024**3


def test_channel_arguments_override_defaults(tmp_path) -> None:
    config = config_from(
        "--model_path", str(tmp_path), "--model_name", "m", "--port", "9001",
        "--grpc_channel_arguments", "grpc.max_receive_message_length=5",
    )  # fmt: skip
    assert dict(config.grpc_options())["grpc.max_receive_message_length"] == 5


def test_rest_port_configures_the_gateway(tmp_path) -> None:
    config = config_from("--model_path", str(tmp_path), "--model_name", "m", "--port", "0", "--rest_port", "8001")
    assert config.gateway is not None and config.gateway.port == 8001 and config.port == 0
    with pytest.raises(UsageError, match="rest_workers count should be from 2 to 10000"):
        config_from("--model_path", str(tmp_path), "--model_name", "m", "--rest_port", "8001", "--rest_workers", "1")
    with pytest.raises(UsageError, match="rest_workers is set but rest_port is not"):
        config_from("--model_path", str(tmp_path), "--model_name", "m", "--port", "9", "--rest_workers", "4")
