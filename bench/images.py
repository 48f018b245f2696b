"""Encoded images vs decoded tensors, per request, and which JPEG decoder to use.

1. Decoder micro-benchmark (no server): decode + bilinear resize to 224x224 of a 224x224
   and a 1280x720 JPEG (quality 90, from a fixed smooth-with-noise image so it compresses
   like a photo) with OpenCV (``cv2.imdecode`` + ``cv2.resize`` INTER_LINEAR, what the
   server does) and Pillow (``Image.open().convert("RGB")`` + ``resize`` BILINEAR), plus
   the DCT-domain downscaling both offer (``IMREAD_REDUCED_COLOR_2``, ``Image.draft``):
   wall and CPU time per image, and how far each result is from OpenCV's.
2. ``resnet_like`` served with ``--layout NHWC:NCHW``, driven with the same 224x224 image
   as a JPEG (KServe BYTES, TFS DT_STRING ``string_val``) and as the FP32 NHWC tensor it
   decodes to (KServe ``raw_input_contents``, TFS ``tensor_content``): request bytes,
   req/s, the JPEG/tensor ratio and server CPU per request. The variants alternate in
   rounds whose order flips.
"""

from __future__ import annotations

import argparse
import io
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import RESULTS_DIR, procs, report, servers
from bench.kserve import MODEL_INFER, infer_request
from bench.load import CHANNEL_OPTIONS, DISTURBED_CORES, LoadResult, measure
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb
from ovms_grpc_client.genproto.tensorflow.core.framework import tensor_pb2, types_pb2
from ovms_grpc_client.genproto.tensorflow_serving.apis import predict_pb2

NAME = "images"
DESCRIPTION = "resnet_like (NHWC:NCHW) fed JPEGs vs decoded FP32 tensors over KServe and TFS; OpenCV vs Pillow decode"
DEFAULT_SECONDS = 8.0
DEFAULT_ROUNDS = 2
MODEL = "resnet_like"
SIZE = 224
TFS_PREDICT = "/tensorflow.serving.PredictionService/Predict"
JPEG_QUALITY = 90


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=4, help="client concurrency (default 4)")
    parser.add_argument(
        "--decode-seconds", type=float, default=1.0, help="seconds per decoder and image size (default 1)"
    )
    parser.add_argument("--skip-server", action="store_true", help="only the decoder micro-benchmark")


def smooth_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A fixed BGR uint8 image: colour gradients, large random blobs and a little noise (compresses like a photo)."""
    import cv2

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    gradient = np.stack([x / width * 200 + 20, y / height * 200 + 20, (x + y) / (width + height) * 160 + 40], -1)
    coarse = rng.normal(0, 40, (height // 24 + 2, width // 24 + 2, 3)).astype(np.float32)
    blobs = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 4, (height, width, 3))
    return np.clip(gradient + blobs + noise, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the test image")
    return encoded.tobytes()


def imdecode(data: bytes, flags: int) -> np.ndarray:
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if image is None:
        raise RuntimeError(f"OpenCV could not decode {len(data)} bytes")
    return image


# --- decoder micro-benchmark ------------------------------------------------------------------------------------


def decode_opencv(data: bytes) -> np.ndarray:
    """What the server does (ovms_grpc.images): BGR, bilinear resize without antialiasing."""
    import cv2

    image = imdecode(data, cv2.IMREAD_UNCHANGED)
    if image.shape[:2] != (SIZE, SIZE):
        image = cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    return image


def decode_opencv_reduced(data: bytes) -> np.ndarray:
    """OpenCV decoding at 1/2 scale in the DCT domain (for images at least twice the target size), then resize."""
    import cv2

    image = imdecode(data, cv2.IMREAD_REDUCED_COLOR_2)
    return cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)


def decode_pillow(data: bytes) -> np.ndarray:
    """Pillow: RGB, BILINEAR resize (which antialiases when it shrinks), returned as BGR to compare with OpenCV."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.asarray(image)[:, :, ::-1]


def decode_pillow_draft(data: bytes) -> np.ndarray:
    """Pillow with ``draft``: libjpeg scales by 1/2, 1/4 or 1/8 while decoding, then BILINEAR resize."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        opened.draft("RGB", (SIZE, SIZE))
        image = opened.convert("RGB")
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.asarray(image)[:, :, ::-1]


DECODERS: dict[str, Callable[[bytes], np.ndarray]] = {
    "opencv": decode_opencv,
    "pillow": decode_pillow,
    "opencv IMREAD_REDUCED_2": decode_opencv_reduced,
    "pillow draft": decode_pillow_draft,
}
#: Decoders that scale while decoding: only worth timing on images at least twice the target size.
DCT_SCALED = ("opencv IMREAD_REDUCED_2", "pillow draft")


@dataclass(frozen=True)
class DecodeTiming:
    decoder: str
    image: str
    jpeg_bytes: int
    count: int
    wall_ms_median: float
    wall_ms_mean: float
    cpu_ms_mean: float
    mean_abs_diff: float
    """Mean absolute difference (0-255 scale) from OpenCV's result: 0 means the same pixels as the server's."""


def time_decoder(decoder: str, label: str, data: bytes, seconds: float, reference: np.ndarray) -> DecodeTiming:
    decode = DECODERS[decoder]
    result = decode(data)
    for _ in range(3):
        decode(data)
    walls: list[float] = []
    cpu0 = time.process_time()
    deadline = time.perf_counter() + seconds
    while True:
        started = time.perf_counter()
        decode(data)
        done = time.perf_counter()
        walls.append(done - started)
        if done >= deadline:
            break
    cpu = time.process_time() - cpu0
    diff = float(np.abs(result.astype(np.int16) - reference.astype(np.int16)).mean())
    return DecodeTiming(decoder, label, len(data), len(walls), 1000 * statistics.median(walls),
                        1000 * statistics.fmean(walls), 1000 * cpu / len(walls), diff)  # fmt: skip


def decoder_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    import cv2
    import PIL
    from PIL import features

    images = {f"{w}x{h}": jpeg(smooth_image(w, h)) for w, h in ((SIZE, SIZE), (1280, 720))}
    timings: list[DecodeTiming] = []
    args.budget.wait_until_quiet()
    other0, started = procs.machine_busy_seconds(), time.monotonic()
    cpu0 = time.process_time()
    for label, data in images.items():
        reference = decode_opencv(data)
        for decoder in DECODERS:
            if decoder in DCT_SCALED and label == f"{SIZE}x{SIZE}":
                continue
            timings.append(time_decoder(decoder, label, data, args.decode_seconds, reference))
    elapsed = time.monotonic() - started
    other = max(procs.machine_busy_seconds() - other0 - (time.process_time() - cpu0), 0.0) / elapsed
    jpeg_build = next((line.split(":", 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
                       if line.strip().startswith("JPEG:")), "?")  # fmt: skip
    versions = {
        "opencv": f"{cv2.__version__} (JPEG: {jpeg_build}; {cv2.getNumThreads()} threads)",
        "pillow": f"{PIL.__version__} (libjpeg-turbo {features.version('jpg')}"
        + ("" if features.check_feature("libjpeg_turbo") else ", NOT turbo")
        + ")",
    }
    print(f"\ndecode + resize to {SIZE}x{SIZE}, one image at a time in this process; "
          f"OpenCV {versions['opencv']}, Pillow {versions['pillow']}")  # fmt: skip
    headers = ["image", "jpeg bytes", "decoder", "wall ms median", "wall ms mean", "cpu ms/image", "diff vs opencv"]
    rows = [[t.image, t.jpeg_bytes, t.decoder, t.wall_ms_median, t.wall_ms_mean, t.cpu_ms_mean, t.mean_abs_diff]
            for t in timings]  # fmt: skip
    print(report.table(headers, rows))
    print("diff vs opencv: mean |difference| of pixel values (0-255) from the server's decoder's result")
    report.warn_if_disturbed([other], [])
    return {"versions": versions, "other_cpu_cores": round(other, 3), "timings": [asdict(t) for t in timings]}


# --- served: JPEG vs tensor ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    label: str
    method: str
    payload: bytes


def kserve_jpeg_request(data: bytes) -> pb.ModelInferRequest:
    """One JPEG as a KServe BYTES element, length-prefixed in raw_input_contents (as tritonclient sends it)."""
    request = pb.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="input", datatype="BYTES", shape=[1])
    request.raw_input_contents.append(struct.pack("<I", len(data)) + data)
    return request


def tfs_request(tensor: tensor_pb2.TensorProto) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["input"].CopyFrom(tensor)
    return request


def tfs_jpeg_request(data: bytes) -> predict_pb2.PredictRequest:
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[data])
    tensor.tensor_shape.dim.add(size=1)
    return tfs_request(tensor)


def tfs_tensor_request(array: np.ndarray) -> predict_pb2.PredictRequest:
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=array.tobytes())
    for size in array.shape:
        tensor.tensor_shape.dim.add(size=size)
    return tfs_request(tensor)


def variants(data: bytes) -> list[Variant]:
    import cv2

    decoded = imdecode(data, cv2.IMREAD_COLOR)  # BGR, as the server decodes
    tensor = decoded.astype(np.float32)[None]  # NHWC [1, 224, 224, 3], values 0..255 as the server makes them
    return [
        Variant("KServe JPEG (BYTES)", MODEL_INFER, kserve_jpeg_request(data).SerializeToString()),
        Variant("KServe FP32 NHWC", MODEL_INFER, infer_request(MODEL, {"input": tensor}).SerializeToString()),
        Variant("TFS JPEG (string_val)", TFS_PREDICT, tfs_jpeg_request(data).SerializeToString()),
        Variant("TFS FP32 NHWC (tensor_content)", TFS_PREDICT, tfs_tensor_request(tensor).SerializeToString()),
    ]


def call_once(target: str, variant: Variant) -> tuple[np.ndarray, int]:
    """The scores one variant gets back, and the answer's size in bytes."""
    import grpc

    with grpc.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        answer: bytes = channel.unary_unary(variant.method)(variant.payload, timeout=60)
    if variant.method == MODEL_INFER:
        response = pb.ModelInferResponse.FromString(answer)
        scores = np.frombuffer(response.raw_output_contents[0], np.float32)
    else:
        tfs = predict_pb2.PredictResponse.FromString(answer)
        scores = np.frombuffer(tfs.outputs["output"].tensor_content, np.float32)
    return scores, len(answer)


def served_benchmark(args: argparse.Namespace, log_dir: Path, profile_to: Path | None) -> dict[str, Any]:
    data = jpeg(smooth_image(SIZE, SIZE))
    cases = variants(data)
    windows: dict[str, list[LoadResult]] = {variant.label: [] for variant in cases}
    answer_bytes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        repository = servers.export_demo(Path(tmp) / "repo", log_dir, args.server_root)
        port = procs.free_port()
        argv = servers.ovms_grpc_argv(
            port,
            repository / MODEL,
            MODEL,
            plugin_config={"PERFORMANCE_HINT": "THROUGHPUT"},
            extra=["--layout", "NHWC:NCHW", *args.server_arg],
            profile_to=profile_to,
        )
        with procs.serving("ovms-grpc", argv, port, log_dir, args.server_root) as process:
            target = f"127.0.0.1:{port}"
            reference, _ = call_once(target, cases[1])
            if reference.shape != (1000,) or not np.isclose(reference.sum(), 1.0, atol=1e-2):
                raise RuntimeError(f"resnet_like answered {reference.shape} summing to {reference.sum()}")
            for variant in cases:
                scores, answer_bytes[variant.label] = call_once(target, variant)
                if not np.allclose(scores, reference, rtol=1e-4, atol=1e-6):
                    worst = float(np.abs(scores - reference).max())
                    raise RuntimeError(f"{variant.label} scores differ from the decoded tensor's (max |diff| {worst})")
            for round_index in range(args.rounds):
                print(f"round {round_index + 1}/{args.rounds}", flush=True)
                for variant in cases if round_index % 2 == 0 else cases[::-1]:
                    result = measure(
                        target,
                        variant.method,
                        variant.payload,
                        concurrency=args.concurrency,
                        seconds=args.seconds,
                        warmup=args.warmup,
                        watch_pids=[process.pid],
                        patience=args.budget,
                    )
                    windows[variant.label].append(result)
                    s = result.summary()
                    print(
                        f"  {variant.label}: {result.rate:.1f} req/s "
                        f"(other load {s['other_cpu_cores']:.2f} cores, steal {s['steal_cores']:.2f})",
                        flush=True,
                    )
    return summarize_served(args, cases, windows, answer_bytes, len(data))


def summarize_served(
    args: argparse.Namespace,
    cases: list[Variant],
    windows: dict[str, list[LoadResult]],
    answer_bytes: dict[str, int],
    jpeg_bytes: int,
) -> dict[str, Any]:
    merged = {label: LoadResult.merge(rounds) for label, rounds in windows.items()}
    summaries = {label: result.summary() for label, result in merged.items()}
    print()
    print(
        f"{MODEL} with --layout NHWC:NCHW, THROUGHPUT hint, one {SIZE}x{SIZE} JPEG (quality {JPEG_QUALITY}, "
        f"{jpeg_bytes} bytes) or its decoded FP32 tensor, concurrency {args.concurrency}, "
        f"{args.rounds} x {args.seconds:g} s per row" + report.server_args_note(args.server_arg)
    )
    headers = ["request", "request bytes", "answer bytes", "req/s", "p50 ms", "p99 ms", "srv cpu ms/req",
               "cli cpu ms/req", "other", "steal", "errors"]  # fmt: skip
    rows = [[v.label, len(v.payload), answer_bytes[v.label], *(summaries[v.label][key] for key in
             ("rate", "p50_ms", "p99_ms", "server_cpu_ms_per_request", "client_cpu_ms_per_request",
              "other_cpu_cores", "steal_cores", "errors"))] for v in cases]  # fmt: skip
    print(report.table(headers, rows))
    comparisons: dict[str, dict[str, Any]] = {}
    for protocol, encoded, tensor in (("KServe", cases[0], cases[1]), ("TFS", cases[2], cases[3])):
        ratio = merged[encoded.label].rate / max(merged[tensor.label].rate, 1e-9)
        per_round = [e.rate / max(t.rate, 1e-9) for e, t in zip(windows[encoded.label], windows[tensor.label],
                                                                 strict=True)]  # fmt: skip
        clean = [max(e.other_cpu_seconds / e.seconds, t.other_cpu_seconds / t.seconds) <= DISTURBED_CORES
                 for e, t in zip(windows[encoded.label], windows[tensor.label], strict=True)]  # fmt: skip
        cpu_delta = float(summaries[encoded.label]["server_cpu_ms_per_request"]) - float(
            summaries[tensor.label]["server_cpu_ms_per_request"]
        )
        bytes_ratio = len(encoded.payload) / len(tensor.payload)
        print(report.ratio_line(f"{protocol} JPEG/tensor req/s", ratio, None, per_round, clean))
        print(f"{protocol} JPEG/tensor request bytes: {bytes_ratio:.4f} ({1 / bytes_ratio:.0f}x fewer); "
              f"server CPU JPEG - tensor: {cpu_delta:+.2f} ms/request")  # fmt: skip
        comparisons[protocol] = {
            "ratio": round(ratio, 4),
            "round_ratios": [round(r, 4) for r in per_round],
            "round_undisturbed": clean,
            "request_bytes_ratio": round(bytes_ratio, 5),
            "server_cpu_ms_per_request_delta": round(cpu_delta, 4),
        }
    every = list(summaries.values()) + [r.summary() for rounds in windows.values() for r in rounds]
    report.warn_if_disturbed([float(s["other_cpu_cores"]) for s in every], [float(s["steal_cores"]) for s in every])
    return {
        "jpeg_bytes": jpeg_bytes,
        "comparisons": comparisons,
        "request_bytes": {v.label: len(v.payload) for v in cases},
        "answer_bytes": answer_bytes,
        "results": summaries,
        "errors": sum(int(s["errors"]) for s in summaries.values()),
    }


def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    decoders = decoder_benchmark(args)
    if args.skip_server:
        return {"passed": True, "decoders": decoders}
    profile_to = RESULTS_DIR / f"{NAME}-ovms_grpc.prof" if args.profile else None
    served = served_benchmark(args, log_dir, profile_to)
    if profile_to is not None:
        report.print_profile(profile_to)
    return {"passed": served["errors"] == 0, "decoders": decoders, "served": served}
