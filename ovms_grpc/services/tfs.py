"""TensorFlow Serving ``PredictionService`` (Predict, GetModelMetadata) and ``ModelService``
(GetModelStatus, HandleReloadConfigRequest) over the model manager."""

from __future__ import annotations

import time

import grpc

from ovms_grpc.images import decode_images_async
from ovms_grpc.models.manager import ModelManager
from ovms_grpc.reloader import ConfigReloader
from ovms_grpc.services.interface import interface_of
from ovms_grpc.services.status import unary
from ovms_grpc.services.tfs_codec import DT_STRING, decode_input, encode_output, tensor_info
from ovms_grpc_client.errors import InvalidArgument, ServingError, Unimplemented, VersionNotFound
from ovms_grpc_client.genproto.tensorflow.core.protobuf import error_codes_pb2, meta_graph_pb2
from ovms_grpc_client.genproto.tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
    status_pb2,
)
from ovms_grpc_client.tensors import validate_input_names, validate_output_names

API = "TensorFlowServing"
SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"


def requested_version(spec: model_pb2.ModelSpec) -> int | None:
    """The version a ModelSpec asks for: ``version``, a numeric ``version_label``, or None (the default)."""
    if spec.HasField("version"):
        return spec.version.value or None
    if spec.HasField("version_label"):
        if spec.version_label.isdigit():
            return int(spec.version_label)
        raise VersionNotFound(f'model "{spec.name}" has no version label "{spec.version_label}"')
    return None


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    @unary
    async def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> predict_pb2.PredictResponse:
        started = time.perf_counter()
        spec = request.model_spec
        servable = await self._manager.servable(spec.name, requested_version(spec))
        ok = False
        try:
            if servable.auto_shape:
                shapes = {
                    n: [d.size for d in t.tensor_shape.dim] for n, t in request.inputs.items() if t.dtype != DT_STRING
                }
                servable = await self._manager.fit_shapes(servable, shapes)
            validate_input_names(servable.name, servable.version, servable.inputs, list(request.inputs))
            requested = list(request.output_filter)
            validate_output_names(servable.name, servable.version, servable.outputs, requested)
            inputs = {}
            for name, tensor in request.inputs.items():
                decoded = decode_input(servable.input_by_name[name], tensor)
                if isinstance(decoded, tuple):
                    decoded = await decode_images_async(*decoded)
                inputs[name] = decoded
            outputs = await servable.infer(inputs, requested)
            response = predict_pb2.PredictResponse(model_spec=_spec(servable.name, servable.version))
            for name, array in outputs.items():
                response.outputs[name].CopyFrom(encode_output(array))
            ok = True
            return response
        finally:
            servable.metrics.request_done(API, interface_of(context), "Predict", ok, started)

    @unary
    async def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if list(request.metadata_field) != ["signature_def"]:
            raise InvalidArgument(
                f'metadata_field must be exactly ["signature_def"], got {list(request.metadata_field)}',
                kind_name="INVALID_SIGNATURE_DEF",
            )
        spec = request.model_spec
        servable = self._manager.loaded_servable(spec.name, requested_version(spec))
        signature = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD)
        for tensor in servable.inputs:
            signature.inputs[tensor.name].CopyFrom(tensor_info(tensor))
        for tensor in servable.outputs:
            signature.outputs[tensor.name].CopyFrom(tensor_info(tensor))
        signatures = get_model_metadata_pb2.SignatureDefMap()
        signatures.signature_def[SIGNATURE].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=_spec(spec.name, servable.version))
        response.metadata["signature_def"].Pack(signatures)
        return response

    @unary
    async def Classify(
        self, request: classification_pb2.ClassificationRequest, context: grpc.aio.ServicerContext
    ) -> classification_pb2.ClassificationResponse:
        raise Unimplemented("Classify is not served (as in OVMS); use Predict")

    @unary
    async def Regress(
        self, request: regression_pb2.RegressionRequest, context: grpc.aio.ServicerContext
    ) -> regression_pb2.RegressionResponse:
        raise Unimplemented("Regress is not served (as in OVMS); use Predict")

    @unary
    async def MultiInference(
        self, request: inference_pb2.MultiInferenceRequest, context: grpc.aio.ServicerContext
    ) -> inference_pb2.MultiInferenceResponse:
        raise Unimplemented("MultiInference is not served (as in OVMS); use Predict")


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager: ModelManager, reloader: ConfigReloader) -> None:
        self._manager = manager
        self._reloader = reloader

    @unary
    async def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.aio.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        spec = request.model_spec
        entry = self._manager.entry(spec.name)
        version = requested_version(spec)
        records = [self._manager.version(spec.name, version)] if version else list(entry.versions.values())
        response = get_model_status_pb2.GetModelStatusResponse()
        for record in sorted(records, key=lambda r: r.version):
            code = error_codes_pb2.OK if record.error_code == "OK" else error_codes_pb2.UNKNOWN
            response.model_version_status.add(
                version=record.version,
                state=int(record.state),
                status=status_pb2.StatusProto(error_code=code, error_message=record.error_message),
            )
        return response

    @unary
    async def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.aio.ServicerContext
    ) -> model_management_pb2.ReloadConfigResponse:
        # As OVMS: the server re-reads its own config.json; a config sent in the request is not applied.
        result = await self._reloader.reload()
        if result.error:
            raise ServingError(result.error, kind_name="JSON_INVALID")
        return model_management_pb2.ReloadConfigResponse(status=status_pb2.StatusProto(error_code=error_codes_pb2.OK))


def _spec(name: str, version: int) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=name, signature_name=SIGNATURE)
    spec.version.value = version
    return spec
