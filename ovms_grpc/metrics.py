"""Prometheus metrics with OVMS's family names, labels, buckets and text format.

Enabled with ``--metrics_enable`` (or config.json ``monitoring.metrics.enable``); ``metrics_list``
narrows them to the families named. Series are plain objects updated on the event loop (no
locks) and resolved once per model version, so the request path only adds numbers. The text
is written here rather than with prometheus_client, which renames counters to ``*_total`` and
adds ``*_created`` series that OVMS dashboards do not expect.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from ovms_grpc_client.prometheus import Distribution, Family, Value

DEFAULT_FAMILIES = (
    "ovms_current_requests",
    "ovms_requests_success",
    "ovms_requests_fail",
    "ovms_request_time_us",
    "ovms_streams",
    "ovms_inference_time_us",
    "ovms_wait_for_infer_req_time_us",
    "ovms_current_graphs",
    "ovms_requests_accepted",
    "ovms_requests_rejected",
    "ovms_graph_error",
    "ovms_graph_processing_time_us",
    "ovms_responses",
)
OPTIONAL_FAMILIES = ("ovms_infer_req_queue_size", "ovms_infer_req_active")
ALL_FAMILIES = DEFAULT_FAMILIES + OPTIONAL_FAMILIES

INTERFACES = ("gRPC", "REST")
#: (api, method) pairs whose counters are created (at zero) for every model version, as OVMS does.
MODEL_METHODS = (
    ("KServe", "ModelInfer"),
    ("KServe", "ModelMetadata"),
    ("KServe", "ModelReady"),
    ("KServe", "ModelInferStream"),
    ("TensorFlowServing", "Predict"),
    ("TensorFlowServing", "GetModelMetadata"),
    ("TensorFlowServing", "GetModelStatus"),
)
TIMED_METHODS = {"ModelInfer", "ModelInferStream", "Predict"}
#: Methods of generative models (OVMS serves them as MediaPipe graphs, api "V3").
GRAPH_METHODS = ("Unary", "Stream")


def validate_families(names: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(names)
    unknown = [name for name in chosen if name not in ALL_FAMILIES]
    if unknown:
        raise ValueError(f"Metrics family name not supported: {unknown[0]}; supported: {', '.join(ALL_FAMILIES)}")
    return chosen


class Metrics:
    """The server's metric families; families not enabled cost nothing and are not written out."""

    def __init__(self, families: Iterable[str] = DEFAULT_FAMILIES) -> None:
        self.enabled: set[str] = set()
        requests = ("api", "interface", "method", "name", "version")
        version = ("name", "version")
        graph = ("api", "interface", "method", "name")

        def family(name: str, kind: str, help_text: str, labels: tuple[str, ...]) -> Family:
            return Family(name, kind, help_text, labels, enabled=False)

        self.families = [
            family("ovms_requests_success", "counter", "Number of successful requests to a model or a DAG.", requests),
            family("ovms_requests_fail", "counter", "Number of failed requests to a model or a DAG.", requests),
            family(
                "ovms_request_time_us",
                "histogram",
                "Processing time of requests to a model or a DAG.",
                ("interface", "name", "version"),
            ),  # fmt: skip
            family("ovms_inference_time_us", "histogram", "Inference execution time in the OpenVINO backend.", version),
            family(
                "ovms_wait_for_infer_req_time_us", "histogram", "Request waiting time in the scheduling queue.", version
            ),  # fmt: skip
            family("ovms_current_requests", "gauge", "Number of inference requests currently in process.", version),
            family("ovms_streams", "gauge", "Number of OpenVINO execution streams.", version),
            family("ovms_infer_req_queue_size", "gauge", "Inference request queue size (nireq).", version),
            family("ovms_infer_req_active", "gauge", "Number of currently consumed inference requests.", version),
            family("ovms_current_graphs", "gauge", "Number of graphs currently in process.", ("name",)),
            family("ovms_requests_accepted", "counter", "Number of requests accepted by a graph.", graph),
            family("ovms_requests_rejected", "counter", "Number of requests rejected by a graph.", graph),
            family("ovms_responses", "counter", "Number of responses sent by a graph.", graph),
            family("ovms_graph_error", "counter", "Number of graph errors.", graph),
            family(
                "ovms_graph_processing_time_us",
                "histogram",
                "Time of processing a request in a graph.",
                ("method", "name"),
            ),  # fmt: skip
        ]
        by_name = {f.name: f for f in self.families}
        self.requests_success = by_name["ovms_requests_success"]
        self.requests_fail = by_name["ovms_requests_fail"]
        self.request_time = by_name["ovms_request_time_us"]
        self.inference_time = by_name["ovms_inference_time_us"]
        self.wait_time = by_name["ovms_wait_for_infer_req_time_us"]
        self.current_requests = by_name["ovms_current_requests"]
        self.streams = by_name["ovms_streams"]
        self.queue_size = by_name["ovms_infer_req_queue_size"]
        self.active = by_name["ovms_infer_req_active"]
        self.graph_families = [by_name[n] for n in ("ovms_requests_accepted", "ovms_requests_rejected",
                                                    "ovms_responses", "ovms_graph_error")]  # fmt: skip
        self.current_graphs = by_name["ovms_current_graphs"]
        self.graph_time = by_name["ovms_graph_processing_time_us"]
        self.enable(families)

    def enable(self, families: Iterable[str]) -> None:
        """Turn on these families (call before models load: series made while off are not kept)."""
        self.enabled |= set(validate_families(families))
        for family in self.families:
            family.enabled = family.name in self.enabled

    def for_servable(self, name: str, version: int, nireq: int, streams: int) -> ServableMetrics:
        """The series of one model version, created at zero when it loads."""
        v = str(version)
        counters = {}
        for api, method in MODEL_METHODS:
            for interface in INTERFACES:
                labels = (api, interface, method, name, v)
                counters[(api, interface, method)] = (
                    self.requests_success.value(*labels),
                    self.requests_fail.value(*labels),
                )
        self.streams.value(name, v).set(streams)
        self.queue_size.value(name, v).set(nireq)
        return ServableMetrics(
            counters=counters,
            request_time={i: self.request_time.distribution(i, name, v) for i in INTERFACES},
            inference_time=self.inference_time.distribution(name, v),
            wait_time=self.wait_time.distribution(name, v),
            current_requests=self.current_requests.value(name, v),
            active=self.active.value(name, v),
        )

    def for_graph(self, name: str) -> GraphMetrics:
        """The series of one generative model (OVMS: a MediaPipe graph), created at zero when it loads."""
        rows: dict[tuple[str, str], GraphRow] = {}
        for interface in INTERFACES:
            for method in GRAPH_METHODS:
                labels = ("V3", interface, method, name)
                accepted, rejected, responses, errors = (f.value(*labels) for f in self.graph_families)
                success = self.requests_success.value(*labels, "")
                fail = self.requests_fail.value(*labels, "")
                rows[(interface, method)] = GraphRow(accepted, rejected, responses, errors, success, fail)
        return GraphMetrics(
            rows, self.current_graphs.value(name), {m: self.graph_time.distribution(m, name) for m in GRAPH_METHODS}
        )

    def remove_graph(self, name: str) -> None:
        """Drop a removed generative model's series."""
        for family in [*self.graph_families, self.current_graphs, self.graph_time]:
            for key in [k for k in family.series if k[-1] == name]:
                del family.series[key]
        self.remove_servable(name, "")

    def remove_servable(self, name: str, version: int | str) -> None:
        """Drop a retired version's series."""
        v = str(version)
        for family in self.families:
            for key in [k for k in family.series if k[-2:] == (name, v)]:
                del family.series[key]

    def text(self) -> str:
        lines: list[str] = []
        for family in self.families:
            family.render(lines)
        return "\n".join(lines) + "\n"


@dataclass
class ServableMetrics:
    """Pre-labelled series of one model version."""

    counters: dict[tuple[str, str, str], tuple[Value, Value]] = field(default_factory=dict)
    request_time: dict[str, Distribution] = field(default_factory=dict)
    inference_time: Distribution = field(default_factory=Distribution)
    wait_time: Distribution = field(default_factory=Distribution)
    current_requests: Value = field(default_factory=Value)
    active: Value = field(default_factory=Value)

    def request_done(self, api: str, interface: str, method: str, ok: bool, started: float) -> None:
        """Count one finished request (and time it, for inference methods)."""
        pair = self.counters.get((api, interface, method))
        if pair is not None:
            (pair[0] if ok else pair[1]).inc()
        if method in TIMED_METHODS:
            self.request_time[interface].observe((time.perf_counter() - started) * 1e6)


@dataclass
class GraphRow:
    """Counters of one (interface, method) of a generative model."""

    accepted: Value
    rejected: Value
    responses: Value
    errors: Value
    success: Value
    fail: Value


@dataclass
class GraphMetrics:
    """Pre-labelled series of one generative model."""

    rows: dict[tuple[str, str], GraphRow]
    current: Value
    processing_time: dict[str, Distribution]

    def request(self, interface: str, method: str) -> GraphRequest:
        return GraphRequest(self, self.rows[(interface, method)], method)


class GraphRequest:
    """One request to a generative model: rejected before it starts, or accepted, answered, then done."""

    def __init__(self, graph: GraphMetrics, row: GraphRow, method: str) -> None:
        self._graph, self._row, self._method = graph, row, method
        self._started = time.perf_counter()
        self._accepted = False

    def accept(self) -> None:
        if not self._accepted:
            self._accepted = True
            self._row.accepted.inc()
            self._graph.current.inc()

    def respond(self) -> None:
        """One message of a stream went out (a unary call counts its one response when done)."""
        if self._method == "Stream":
            self._row.responses.inc()

    def done(self, ok: bool) -> None:
        if not self._accepted:
            self._row.rejected.inc()
            self._row.fail.inc()
            return
        self._graph.current.dec()
        (self._row.success if ok else self._row.fail).inc()
        if ok and self._method == "Unary":
            self._row.responses.inc()
        if not ok:
            self._row.errors.inc()
        self._graph.processing_time[self._method].observe((time.perf_counter() - self._started) * 1e6)
