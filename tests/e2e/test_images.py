"""Encoded images as BYTES inputs on KServe gRPC, checked against an independent decode (Pillow)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
from PIL import Image

from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as pb_grpc
from tests import models


def encode(pixels_rgb: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels_rgb).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def pillow_bgr(data: bytes) -> np.ndarray:
    """Decode with Pillow (not OpenCV) and flip to BGR, the order OVMS feeds models."""
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return rgb[:, :, ::-1].astype(np.float32)


def request(model: str, images: list[bytes], raw: bool = False, shape: list[int] | None = None) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name=model)
    tensor = message.inputs.add(name="image", datatype="BYTES", shape=shape or [len(images)])
    if raw:
        message.raw_input_contents.append(b"".join(struct.pack("<I", len(i)) + i for i in images))
    else:
        tensor.contents.bytes_contents.extend(images)
    return message


def pixels(response: pb.ModelInferResponse) -> np.ndarray:
    return np.frombuffer(response.raw_output_contents[0], np.float32).reshape(response.outputs[0].shape)


RNG = np.random.default_rng(11)
PHOTO = RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def stub(server_factory, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("images")
    models.save(models.build_image_echo([1, 12, 16, 3]), root / "exact")
    models.save(models.build_image_echo([-1, 6, 8, 3]), root / "small")
    models.save(models.build_image_echo([-1, -1, -1, 3]), root / "any")
    models.save(models.build_channel_sum(), root / "nchw")
    entries = [
        {"name": "exact", "base_path": "exact"},
        {"name": "small", "base_path": "small"},
        {"name": "any", "base_path": "any"},
        {"name": "nchw_declared", "base_path": "nchw", "layout": "NCHW"},
        {"name": "nchw_as_nhwc", "base_path": "nchw", "layout": "NHWC:NCHW"},
    ]
    models.write_config(root / "config.json", entries)
    server = server_factory("--config_path", str(root / "config.json"))
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


@pytest.mark.parametrize("raw", [False, True])
def test_png_is_decoded_exactly_in_bgr_order(stub, raw: bool) -> None:
    png = encode(PHOTO, "PNG")
    got = pixels(stub.ModelInfer(request("exact", [png], raw=raw)))
    assert got.shape == (1, 12, 16, 3)
    np.testing.assert_array_equal(got[0], pillow_bgr(png))
    assert not np.array_equal(got[0], PHOTO.astype(np.float32))  # RGB order would be wrong


def test_jpeg_batch_is_resized_to_the_model_size(stub) -> None:
    jpegs = [encode(PHOTO, "JPEG", quality=95), encode(255 - PHOTO, "JPEG", quality=95)]
    got = pixels(stub.ModelInfer(request("small", jpegs)))
    assert got.shape == (2, 6, 8, 3)
    for index, data in enumerate(jpegs):
        expected = cv2.resize(pillow_bgr(data), (8, 6), interpolation=cv2.INTER_LINEAR)
        assert np.abs(got[index] - expected).mean() < 3.0  # JPEG decoders differ slightly


def test_image_matches_sending_the_decoded_tensor(stub) -> None:
    png = encode(PHOTO, "PNG")
    from_image = pixels(stub.ModelInfer(request("nchw_as_nhwc", [encode(PHOTO[:4, :4], "PNG")])))
    tensor = pillow_bgr(encode(PHOTO[:4, :4], "PNG"))[None]
    direct = pb.ModelInferRequest(model_name="nchw_as_nhwc")
    direct.inputs.add(name="image", datatype="FP32", shape=[1, 4, 4, 3])
    direct.raw_input_contents.append(tensor.tobytes())
    np.testing.assert_array_equal(from_image, pixels(stub.ModelInfer(direct)))
    assert pixels(stub.ModelInfer(request("any", [png]))).shape == (1, 12, 16, 3)


def rpc_error(stub, message: pb.ModelInferRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(message)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return info.value


def test_image_errors(stub) -> None:
    error = rpc_error(stub, request("exact", [b"definitely not an image"]))
    assert error.details().startswith("Image parsing failed - image 0 of input image (23 bytes) is not an image")
    gray = encode(PHOTO[:, :, 0], "PNG")
    error = rpc_error(stub, request("exact", [gray]))
    assert (
        error.details() == "Invalid number of channels in binary input - Expected: 3; Actual: 1; image 0 of input image"
    )
    error = rpc_error(stub, request("any", [encode(PHOTO, "PNG"), encode(PHOTO[:6], "PNG")]))
    assert error.details().startswith("Binary input images for this endpoint are required to have the same resolution")
    error = rpc_error(stub, request("nchw_declared", [encode(PHOTO, "PNG")]))
    assert error.details() == (
        "Received binary image input but resource not configured to accept NHWC layout - "
        "input image has layout NCHW; serve it with layout NHWC:NCHW"
    )
    error = rpc_error(stub, request("exact", [encode(PHOTO, "PNG")] * 2))
    assert error.details() == "Invalid input batch size - Expected: 1; Actual: 2; input name: image"
    error = rpc_error(stub, request("small", [encode(PHOTO, "PNG")], shape=[1, 1]))
    assert "Expected number of input shape dimensions: 1; Actual: 2" in error.details()
    error = rpc_error(stub, request("small", [b""]))
    assert error.details() == "Bytes contents is empty - image 0 of input image is empty"


def test_images_into_an_input_that_cannot_take_them(server_factory, dummy_repo: Path) -> None:
    server = server_factory("--model_path", str(dummy_repo), "--model_name", "dummy")
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        message = pb.ModelInferRequest(model_name="dummy")
        message.inputs.add(name="b", datatype="BYTES", shape=[1]).contents.bytes_contents.append(encode(PHOTO, "PNG"))
        error = rpc_error(stub, message)
    assert error.details() == (
        "Invalid input precision - Expected: FP32; Actual: BYTES; input name: b "
        "(encoded images need a 4-D numeric input; this one is FP32 (1,10))"
    )
