import json
from pathlib import Path

import pytest

from ovms_grpc.config import ConfigError, parse_config
from ovms_grpc.models.policy import VersionPolicy
from ovms_grpc.shapes import AUTO, LayoutValue


def parse(document: object, base: Path = Path("/models")):
    return parse_config(json.dumps(document), "config.json", base)


def model(**config: object) -> dict:
    return {"model_config_list": [{"config": {"name": "m", "base_path": "m", **config}}]}


def test_full_entry() -> None:
    serving = parse(
        model(
            target_device="AUTO:CPU",
            plugin_config={"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 2},
            nireq=4,
            batch_size="auto",
            shape={"in": "(1,3,1..448,1:448)", "other": "auto"},
            layout="NHWC:NCHW",
            model_version_policy={"latest": {"num_versions": 2}},
        )
    )
    (config,) = serving.models
    assert config.base_path == Path("/models/m")
    assert config.version_policy == VersionPolicy("latest", 2)
    load = config.load
    assert (load.target_device, load.nireq, load.batch_size) == ("AUTO:CPU", 4, AUTO)
    assert load.shapes == (("in", ((1, 1), (3, 3), (1, 448), (1, 448))), ("other", AUTO))
    assert load.layouts == (("", LayoutValue("NHWC", "NCHW")),)
    assert serving.digest


def test_absolute_base_path_kept_and_monitoring_read() -> None:
    document = model()
    document["model_config_list"][0]["config"]["base_path"] = "/abs/m"
    document["monitoring"] = {"metrics": {"enable": True, "metrics_list": ["ovms_requests_success"]}}
    serving = parse(document)
    assert serving.models[0].base_path == Path("/abs/m")
    assert serving.metrics.enable and serving.metrics.metrics_list == ("ovms_requests_success",)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "config.json: (top level): missing required key 'model_config_list'"),
        ({"model_config_list": {}}, "config.json: model_config_list: expected an array, got {}"),
        ({"model_config_list": [], "extra": 1}, "config.json: (top level): unknown key 'extra'"),
        ({"model_config_list": [{"name": "m"}]}, "config.json: model_config_list[0]: unknown key 'name'"),
        (model(nireq="4"), 'config.json: model_config_list[0].config.nireq: expected a non-negative integer, got "4"'),
        (model(nireq=-1), "model_config_list[0].config.nireq: expected a non-negative integer, got -1"),
        (model(target_device="TPU"), "model_config_list[0].config.target_device: 'TPU' is not a valid device"),
        (model(plugin_config=[]), "model_config_list[0].config.plugin_config: expected a JSON object, got list"),
        (model(model_version_policy={"newest": {}}), "config.model_version_policy: unknown policy 'newest'"),
        (model(shape="(1,x)"), 'config.shape: dimension "x" in "(1,x)" is not a positive size, -1 or a lo:hi range'),
        (model(batch_size=-2), 'config.batch_size: expected a positive integer or "auto", got -2'),
        (model(layout="NHWC:NCH"), 'config.layout: layout "NHWC:NCH": both sides must name the same dimensions'),
        (model(stateful=True), "config.stateful: stateful models are not supported by this server yet"),
        (model(unknown_key=1), "model_config_list[0].config: unknown key 'unknown_key'"),
        ({"model_config_list": [], "pipeline_config_list": [{}]}, "DAG pipelines are not supported"),
    ],
)
def test_invalid_documents_name_file_path_and_expectation(document: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(document)
    assert message in str(info.value)


def test_duplicate_names_and_bad_json() -> None:
    document = {"model_config_list": [{"config": {"name": "a", "base_path": "x"}}] * 2}
    with pytest.raises(ConfigError, match='model_config_list\\[1\\].config.name: model name "a" is used twice'):
        parse(document)
    with pytest.raises(ConfigError, match="config.json: not valid JSON: Expecting ',' delimiter at line 1"):
        parse_config('{"model_config_list": [1 2]}', "config.json", Path("."))
