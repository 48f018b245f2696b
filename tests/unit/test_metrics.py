import pytest

from ovms_grpc.metrics import DEFAULT_FAMILIES, Metrics, validate_families
from ovms_grpc_client.prometheus import BUCKETS_US


def test_buckets_are_ovms_ones() -> None:
    assert BUCKETS_US[:6] == [10, 18, 32, 58, 104, 188]
    assert BUCKETS_US[-1] == 1474755971 and len(BUCKETS_US) == 33


def test_series_exist_at_zero_when_a_version_loads_and_count_after() -> None:
    metrics = Metrics(DEFAULT_FAMILIES)
    series = metrics.for_servable("m", 1, nireq=4, streams=2)
    text = metrics.text()
    assert 'ovms_requests_success{api="KServe",interface="gRPC",method="ModelInfer",name="m",version="1"} 0' in text
    assert 'ovms_streams{name="m",version="1"} 2' in text
    assert "ovms_infer_req_queue_size" not in text  # optional family, not enabled
    series.request_done("KServe", "REST", "ModelInfer", True, started=0.0)
    series.inference_time.observe(15)
    text = metrics.text()
    assert 'ovms_requests_success{api="KServe",interface="REST",method="ModelInfer",name="m",version="1"} 1' in text
    assert 'ovms_inference_time_us_bucket{name="m",version="1",le="10"} 0' in text
    assert 'ovms_inference_time_us_bucket{name="m",version="1",le="18"} 1' in text
    assert 'ovms_inference_time_us_bucket{name="m",version="1",le="+Inf"} 1' in text
    assert 'ovms_inference_time_us_count{name="m",version="1"} 1' in text
    assert "# TYPE ovms_request_time_us histogram" in text
    metrics.remove_servable("m", 1)
    assert 'name="m"' not in metrics.text()


def test_metrics_list_narrows_and_rejects_unknown_names() -> None:
    metrics = Metrics(["ovms_infer_req_queue_size"])
    metrics.for_servable("m", 3, nireq=4, streams=1)
    assert (
        metrics.text().count("\novms_") == 1 and 'ovms_infer_req_queue_size{name="m",version="3"} 4' in metrics.text()
    )
    with pytest.raises(ValueError, match="Metrics family name not supported: ovms_nope"):
        validate_families(["ovms_nope"])


def test_disabled_metrics_write_nothing() -> None:
    metrics = Metrics(())
    metrics.for_servable("m", 1, 1, 1).request_done("KServe", "gRPC", "ModelInfer", True, 0.0)
    assert metrics.text() == "\n"
