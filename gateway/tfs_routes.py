"""TensorFlow Serving REST routes: model status, metadata and ``:predict``."""

from __future__ import annotations

import orjson
from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http_errors import HttpError
from gateway.responses import json_response, read_body
from gateway.tfs_codec import encode_predict, parse_predict
from gateway.upstream import Upstream
from ovms_grpc_client.genproto.tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
)


def _spec(request: Request) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=request.path_params["model"])
    if "version" in request.path_params:
        spec.version.value = request.path_params["version"]
    elif "label" in request.path_params:
        spec.version_label = request.path_params["label"]
    return spec


def _proto_json(message: object) -> dict:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)  # type: ignore[arg-type]


async def model_status(request: Request) -> Response:
    upstream: Upstream = request.app.state.upstream
    answer = await upstream.call(
        upstream.tfs_model.GetModelStatus, get_model_status_pb2.GetModelStatusRequest(model_spec=_spec(request))
    )
    return json_response(_proto_json(answer))


async def _metadata(upstream: Upstream, spec: model_pb2.ModelSpec) -> get_model_metadata_pb2.GetModelMetadataResponse:
    return await upstream.call(
        upstream.tfs_predict.GetModelMetadata,
        get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec, metadata_field=["signature_def"]),
    )


async def model_metadata(request: Request) -> Response:
    upstream: Upstream = request.app.state.upstream
    return json_response(_proto_json(await _metadata(upstream, _spec(request))))


async def predict(request: Request) -> Response:
    upstream: Upstream = request.app.state.upstream
    body = await read_body(request)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError("INVALID_ARGUMENT", f"The request is not valid JSON: {exc}") from None
    spec = _spec(request)
    metadata = await _metadata(upstream, spec)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    metadata.metadata["signature_def"].Unpack(signatures)
    inputs = signatures.signature_def["serving_default"].inputs
    grpc_request, rows = parse_predict(document, {name: info.dtype for name, info in inputs.items()})
    grpc_request.model_spec.CopyFrom(spec)
    answer = await upstream.call(upstream.tfs_predict.Predict, grpc_request)
    return json_response(encode_predict(answer, rows))


async def not_served(request: Request) -> Response:
    raise HttpError("REST_NOT_FOUND", details=f"{request.url.path.rsplit(':', 1)[-1]} is not served")


ROUTES = [
    Route("/v1/models/{model}:predict", predict, methods=["POST"]),
    Route("/v1/models/{model}/versions/{version:int}:predict", predict, methods=["POST"]),
    Route("/v1/models/{model}/labels/{label}:predict", predict, methods=["POST"]),
    Route("/v1/models/{model}:{verb:str}", not_served, methods=["POST"]),
    Route("/v1/models/{model}/versions/{version:int}:{verb:str}", not_served, methods=["POST"]),
    Route("/v1/models/{model}/metadata", model_metadata, methods=["GET"]),
    Route("/v1/models/{model}/versions/{version:int}/metadata", model_metadata, methods=["GET"]),
    Route("/v1/models/{model}", model_status, methods=["GET"]),
    Route("/v1/models/{model}/versions/{version:int}", model_status, methods=["GET"]),
]
