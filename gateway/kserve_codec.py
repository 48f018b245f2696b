"""KServe v2 REST (JSON, and the binary data extension) <-> KServe v2 gRPC messages.

Tensor rules (value counts, datatype ranges, BYTES framing) come from
`ovms_grpc_client.tensors`, the same module the server validates with, so a bad
tensor reads the same over REST and gRPC.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from gateway.http_errors import HttpError, from_serving_error
from ovms_grpc_client.errors import InvalidArgument
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb
from ovms_grpc_client.tensors import (
    KSERVE_TO_NUMPY,
    TensorSpec,
    array_from_values,
    deserialize_bytes,
    element_count,
    to_raw,
)

HEADER_LENGTH = "inference-header-content-length"


def _is_int64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _bad(message: str) -> HttpError:
    return HttpError("INVALID_ARGUMENT", message)


def _flatten(data: Any) -> list:
    if not isinstance(data, list):
        return [data]
    flat: list = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def _check_values(datatype: str, values: list, name: str) -> list:
    """JSON values must match the datatype's family (numbers, integers, booleans, strings)."""
    if datatype == "BYTES":
        if not all(isinstance(v, str) for v in values):
            raise _bad(
                f"Could not parse input content. Not valid ndarray detected - BYTES takes strings; input: {name}"
            )
        return [v.encode() for v in values]
    if datatype == "BOOL":
        ok = all(isinstance(v, bool) for v in values)
    elif datatype.startswith("FP"):
        ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    else:
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if not ok:
        raise _bad(
            f"Could not parse input content. Not valid ndarray detected - {datatype} values expected; input: {name}"
        )
    return values


def _parameters(item: dict, where: str) -> dict:
    params = item.get("parameters", {})
    if not isinstance(params, dict):
        raise _bad(f"Could not parse request parameters - {where}.parameters must be an object")
    return params


def parse_infer_request(
    body: bytes, header_length: str | None, model: str, version: str
) -> tuple[pb.ModelInferRequest, bool, set[str]]:
    """The gRPC request for a REST infer body; also whether (and which) outputs go back as binary."""
    binary = b""
    if header_length is not None:
        if not header_length.isdigit():
            raise _bad(f"Inference-Header-Content-Length must be a non-negative integer, got {header_length!r}")
        length = int(header_length)
        if length > len(body):
            raise _bad(f"Inference-Header-Content-Length header exceeds actual payload length ({length} > {len(body)})")
        body, binary = body[:length], body[length:]
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"The request is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _bad("Request body should be JSON object")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise _bad("Invalid JSON structure, missing inputs")
    request = pb.ModelInferRequest(model_name=model, model_version=version)
    request_id = document.get("id", "")
    if not isinstance(request_id, str):
        raise _bad("Invalid JSON structure, id must be a string")
    request.id = request_id
    offset = 0
    single_input = len(inputs) == 1
    for index, item in enumerate(inputs):
        where = f"inputs[{index}]"
        if not isinstance(item, dict):
            raise _bad(f"Invalid JSON structure, {where} must be an object")
        name, shape, datatype = item.get("name"), item.get("shape"), item.get("datatype")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise _bad(f"Invalid JSON structure, {where} needs a string name and datatype")
        if not isinstance(shape, list) or not all(_is_int64(d) for d in shape):
            raise _bad(f"Invalid JSON structure, {where}.shape must be an array of 64-bit integers; input: {name}")
        if datatype not in KSERVE_TO_NUMPY:
            raise _bad(
                f"Could not parse input content. Unsupported data precision detected - {datatype}; input: {name}"
            )
        request.inputs.add(name=name, datatype=datatype, shape=shape)
        params = _parameters(item, where)
        size = params.get("binary_data_size")
        if size is not None:
            if "data" in item:
                raise _bad(f"Request contains values both in binary data and in content value; input: {name}")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise _bad(f"binary_data_size parameter is invalid and cannot be parsed; input: {name}")
        elif "data" not in item:
            if not binary:
                raise _bad(f"Invalid JSON structure, {where} has neither data nor binary_data_size; input: {name}")
            if datatype == "BYTES" and not single_input:
                raise _bad(f"binary_data_size is required for BYTES input {name} when there are several inputs")
            size = (
                len(binary) - offset
                if datatype == "BYTES"
                else element_count(shape) * KSERVE_TO_NUMPY[datatype].itemsize
            )
        if size is not None:
            if offset + size > len(binary):
                raise _bad(
                    "Received buffer size is smaller than binary_data_size parameter indicates - "
                    f"input {name} needs {size} bytes at offset {offset}, {len(binary) - offset} left"
                )
            request.raw_input_contents.append(binary[offset : offset + size])
            offset += size
        else:
            values = _check_values(datatype, _flatten(item["data"]), name)
            spec = TensorSpec(name, datatype, tuple((d, d) for d in shape))
            try:
                array = array_from_values(spec, shape, values)
            except InvalidArgument as exc:
                raise from_serving_error(exc) from None
            request.raw_input_contents.append(to_raw(array))
    if offset != len(binary):
        raise _bad(f"binary data has {len(binary) - offset} bytes that no input claims")
    params = _parameters(document, "request")
    binary_all = params.get("binary_data_output") is True
    outputs = document.get("outputs", [])
    if not isinstance(outputs, list):
        raise _bad("Could not parse output content. outputs must be an array")
    binary_outputs = set()
    for index, output in enumerate(outputs):
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise _bad(f"Could not parse output content. outputs[{index}] needs a string name")
        request.outputs.add(name=output["name"])
        if _parameters(output, f"outputs[{index}]").get("binary_data") is True:
            binary_outputs.add(output["name"])
    return request, binary_all, binary_outputs


def _json_values(datatype: str, raw: bytes, name: str) -> Any:
    if datatype == "BYTES":
        return [item.decode("utf-8", errors="replace") for item in deserialize_bytes(raw, name)]
    array = np.frombuffer(raw, dtype=KSERVE_TO_NUMPY[datatype])
    return array.astype(np.float32) if datatype == "FP16" else array


def encode_infer_response(
    response: pb.ModelInferResponse, binary_all: bool, binary_outputs: set[str]
) -> tuple[bytes, int | None]:
    """JSON (and appended binary outputs); returns the body and the JSON length when binary follows."""
    outputs = []
    chunks = []
    for output, raw in zip(response.outputs, response.raw_output_contents, strict=False):
        entry: dict[str, Any] = {"name": output.name, "datatype": output.datatype, "shape": list(output.shape)}
        if binary_all or output.name in binary_outputs:
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = _json_values(output.datatype, raw, output.name)
        outputs.append(entry)
    document: dict[str, Any] = {"model_name": response.model_name, "model_version": response.model_version}
    if response.id:
        document["id"] = response.id
    document["outputs"] = outputs
    header = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


def metadata_json(response: pb.ModelMetadataResponse) -> dict:
    def tensors(items: Any) -> list[dict]:
        return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in items]

    return {
        "name": response.name,
        "versions": list(response.versions),
        "platform": response.platform,
        "inputs": tensors(response.inputs),
        "outputs": tensors(response.outputs),
    }
