"""KServe v2 REST routes: health, server and model metadata, readiness, infer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http_errors import HttpError
from gateway.kserve_codec import HEADER_LENGTH, encode_infer_response, metadata_json, parse_infer_request
from gateway.responses import json_response, read_body
from gateway.upstream import Upstream
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb


def _upstream(request: Request) -> Upstream:
    return request.app.state.upstream


def _model(request: Request) -> tuple[str, str]:
    version = request.path_params.get("version")
    return request.path_params["model"], "" if version is None else str(version)


async def live(request: Request) -> Response:
    answer = await _upstream(request).call(_upstream(request).kserve.ServerLive, pb.ServerLiveRequest())
    if not answer.live:
        raise HttpError("INTERNAL_ERROR", details="the server is not live")
    return Response(status_code=200)


async def ready(request: Request) -> Response:
    answer = await _upstream(request).call(_upstream(request).kserve.ServerReady, pb.ServerReadyRequest())
    if not answer.ready:
        raise HttpError("SERVER_NOT_READY")
    return Response(status_code=200)


async def server_metadata(request: Request) -> Response:
    answer = await _upstream(request).call(_upstream(request).kserve.ServerMetadata, pb.ServerMetadataRequest())
    return json_response({"name": answer.name, "version": answer.version, "extensions": list(answer.extensions)})


async def model_metadata(request: Request) -> Response:
    name, version = _model(request)
    upstream = _upstream(request)
    answer = await upstream.call(upstream.kserve.ModelMetadata, pb.ModelMetadataRequest(name=name, version=version))
    return json_response(metadata_json(answer))


async def model_ready(request: Request) -> Response:
    name, version = _model(request)
    upstream = _upstream(request)
    answer = await upstream.call(upstream.kserve.ModelReady, pb.ModelReadyRequest(name=name, version=version))
    if not answer.ready:
        raise HttpError("MODEL_VERSION_NOT_LOADED_YET", details=f'model "{name}" is not ready')
    return Response(status_code=200)


#: Content types an infer body may declare: JSON, JSON + binary, or curl's default for ``-d``.
INFER_CONTENT_TYPES = {"", "application/json", "application/octet-stream", "application/x-www-form-urlencoded"}


async def infer(request: Request) -> Response:
    name, version = _model(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in INFER_CONTENT_TYPES:
        raise HttpError("INVALID_ARGUMENT", f"Unsupported Content-Type {content_type!r}; send application/json "
                        "(or application/octet-stream with Inference-Header-Content-Length)")  # fmt: skip
    body = await read_body(request)
    grpc_request, binary_all, binary_outputs = parse_infer_request(
        body, request.headers.get(HEADER_LENGTH), name, version
    )
    upstream = _upstream(request)
    answer = await upstream.call(upstream.kserve.ModelInfer, grpc_request)
    content, header_length = encode_infer_response(answer, binary_all, binary_outputs)
    if header_length is None:
        return Response(content, media_type="application/json")
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(header_length)},
    )


ROUTES = [
    Route("/v2/health/live", live, methods=["GET"]),
    Route("/v2/health/ready", ready, methods=["GET"]),
    Route("/v2", server_metadata, methods=["GET"]),
    Route("/v2/models/{model}", model_metadata, methods=["GET"]),
    Route("/v2/models/{model}/versions/{version:int}", model_metadata, methods=["GET"]),
    Route("/v2/models/{model}/ready", model_ready, methods=["GET"]),
    Route("/v2/models/{model}/versions/{version:int}/ready", model_ready, methods=["GET"]),
    Route("/v2/models/{model}/infer", infer, methods=["POST"]),
    Route("/v2/models/{model}/versions/{version:int}/infer", infer, methods=["POST"]),
]
