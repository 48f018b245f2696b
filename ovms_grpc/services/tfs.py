"""TensorFlow Serving ``PredictionService`` (Predict, GetModelMetadata) and ``ModelService``
(GetModelStatus, HandleReloadConfigRequest) over the model manager."""

from __future__ import annotations

import grpc

from ovms_grpc.core.inference import Caller, Inference
from ovms_grpc.models.manager import ModelManager
from ovms_grpc.reloader import ConfigReloader
from ovms_grpc.services.interface import interface_of
from ovms_grpc.services.status import unary
from ovms_grpc.services.tfs_codec import TfsPredict, encode_output, model_ref, tensor_info
from ovms_grpc_client.errors import InvalidArgument, ServingError, Unimplemented
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

API = "TensorFlowServing"
SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager: ModelManager, inference: Inference | None = None) -> None:
        self._inference = inference or Inference(manager)

    @unary
    async def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> predict_pb2.PredictResponse:
        result = await self._inference.infer(TfsPredict(request), Caller(API, interface_of(context), "Predict"))
        response = predict_pb2.PredictResponse(model_spec=_spec(result.name, result.version))
        for name, array in result.outputs.items():
            response.outputs[name].CopyFrom(encode_output(array))
        return response

    @unary
    async def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if list(request.metadata_field) != ["signature_def"]:
            raise InvalidArgument(
                f'metadata_field must be exactly ["signature_def"], got {list(request.metadata_field)}',
                kind_name="INVALID_SIGNATURE_DEF",
            )
        metadata = self._inference.metadata(model_ref(request.model_spec))
        signature = meta_graph_pb2.SignatureDef(method_name=PREDICT_METHOD)
        for tensor in metadata.inputs:
            signature.inputs[tensor.name].CopyFrom(tensor_info(tensor))
        for tensor in metadata.outputs:
            signature.outputs[tensor.name].CopyFrom(tensor_info(tensor))
        signatures = get_model_metadata_pb2.SignatureDefMap()
        signatures.signature_def[SIGNATURE].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=_spec(metadata.name, metadata.version))
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
    def __init__(self, manager: ModelManager, reloader: ConfigReloader, inference: Inference | None = None) -> None:
        self._inference = inference or Inference(manager)
        self._reloader = reloader

    @unary
    async def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.aio.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        response = get_model_status_pb2.GetModelStatusResponse()
        for record in self._inference.status(model_ref(request.model_spec)):
            state, error_code, error_message = record.reported()
            code = error_codes_pb2.OK if error_code == "OK" else error_codes_pb2.UNKNOWN
            response.model_version_status.add(
                version=record.version,
                state=int(state),
                status=status_pb2.StatusProto(error_code=code, error_message=error_message),
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
