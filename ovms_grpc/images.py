"""Encoded images (JPEG, PNG, ...) sent as BYTES / DT_STRING into a 4-D numeric input, as OVMS does.

Each batch element is decoded with OpenCV (colour order BGR), checked for its channel count,
resized (bilinear) to the input's static height and width (a ranged dimension takes the image's
size clamped to the range; a fully dynamic one takes it as it is, and then every image of the
batch must share one size), converted to the input's precision without scaling and packed NHWC.
Decoding runs in a worker thread (see `decode_images_async`), never on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ovms_grpc_client.errors import InvalidArgument
from ovms_grpc_client.tensors import Dim, TensorSpec, format_dims

#: Layouts an image input may have (OVMS: NHWC, N?HWC, or none given).
IMAGE_LAYOUTS = ("", "NHWC", "N?HWC")

#: An image input still to decode: (spec, encoded images, request shape).
PendingImages = tuple[TensorSpec, list[bytes], list[int]]

_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="image-decode")


def accepts_images(spec: TensorSpec) -> bool:
    """A 4-D numeric input: BYTES sent to it are encoded images."""
    return spec.datatype != "BYTES" and not spec.dynamic_rank and len(spec.dims) == 4


def not_an_image_input(spec: TensorSpec, sent: str) -> InvalidArgument:
    """The error for encoded images sent to an input that cannot take them."""
    shape = format_dims(spec.dims) if not spec.dynamic_rank else "(any rank)"
    return InvalidArgument(
        f"Expected: {spec.datatype}; Actual: {sent}; input name: {spec.name} (encoded images need a 4-D numeric "
        f"input; this one is {spec.datatype} {shape})",
        kind_name="INVALID_PRECISION",
    )


def _fit(size: int, dim: Dim) -> int | None:
    """The size an image dimension becomes: the static size, clamped into a range, or None to keep it."""
    lo, hi = dim
    if lo == hi:
        return lo
    if hi == -1 and lo <= 1:
        return None
    return max(lo, size) if hi == -1 else min(max(lo, size), hi)


def decode_images(spec: TensorSpec, items: Sequence[bytes], request_shape: Sequence[int]) -> np.ndarray:
    """The images of one request input as an NHWC array of the input's precision."""
    import cv2

    name = spec.name
    if spec.layout not in IMAGE_LAYOUTS:
        raise InvalidArgument(
            f"input {name} has layout {spec.layout}; serve it with layout NHWC:{spec.layout}",
            kind_name="UNSUPPORTED_LAYOUT",
        )
    if len(request_shape) != 1:
        raise InvalidArgument(
            f"Expected number of input shape dimensions: 1; Actual: {len(request_shape)}; input name: {name} "
            "(binary image inputs have shape [number of images])",
            kind_name="INVALID_NO_OF_SHAPE_DIMENSIONS",
        )
    batch, height, width, channels = spec.dims
    count = len(items)
    if count < batch[0] or (batch[1] != -1 and count > batch[1]):
        raise InvalidArgument(
            f"Expected: {format_dims([batch])[1:-1]}; Actual: {count}; input name: {name}",
            kind_name="INVALID_BATCH_SIZE",
        )
    images: list[np.ndarray] = []
    for index, item in enumerate(items):
        if not item:
            raise InvalidArgument(f"image {index} of input {name} is empty", kind_name="BYTES_CONTENTS_EMPTY")
        image = cv2.imdecode(np.frombuffer(item, np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise InvalidArgument(
                f"image {index} of input {name} ({len(item)} bytes) is not an image OpenCV can decode",
                kind_name="IMAGE_PARSING_FAILED",
            )
        if image.ndim == 2:
            image = image[:, :, None]
        if channels[0] == channels[1] and image.shape[2] != channels[0]:
            raise InvalidArgument(
                f"Expected: {channels[0]}; Actual: {image.shape[2]}; image {index} of input {name}",
                kind_name="INVALID_NO_OF_CHANNELS",
            )
        target_h, target_w = _fit(image.shape[0], height), _fit(image.shape[1], width)
        target = (target_h or image.shape[0], target_w or image.shape[1])
        if target != image.shape[:2]:
            image = cv2.resize(image, (target[1], target[0]), interpolation=cv2.INTER_LINEAR)
            if image.ndim == 2:
                image = image[:, :, None]
        if images and image.shape != images[0].shape:
            raise InvalidArgument(
                f"image {index} of input {name} is {image.shape[1]}x{image.shape[0]}, image 0 is "
                f"{images[0].shape[1]}x{images[0].shape[0]}; the model takes any size, so one batch needs one size",
                kind_name="BINARY_IMAGES_RESOLUTION_MISMATCH",
            )
        images.append(image)
    return np.stack(images).astype(spec.numpy_dtype, copy=False)


async def decode_images_async(spec: TensorSpec, items: Sequence[bytes], request_shape: Sequence[int]) -> np.ndarray:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, decode_images, spec, items, request_shape)
