"""A bare grpc.aio KServe server: ModelInfer returns one fixed, prebuilt response.

No model, no validation, no logging per request: the floor any Python KServe
server over grpc.aio can reach. Its answer has the size of ``dummy``'s
(FP32 [1,10] output ``a``) unless told otherwise. Run it as a subprocess:

    python -m bench.echo_server --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bench.load import CHANNEL_OPTIONS
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


def fixed_response(model: str, version: str, output: str, shape: list[int]) -> pb.ModelInferResponse:
    """An FP32 answer of ``shape`` (zeros) in raw_output_contents, as our server encodes it."""
    elements = 1
    for dim in shape:
        elements *= dim
    response = pb.ModelInferResponse(model_name=model, model_version=version)
    response.outputs.add(name=output, datatype="FP32", shape=shape)
    response.raw_output_contents.append(bytes(4 * elements))
    return response


def model_infer_handler(response: pb.ModelInferResponse) -> grpc.GenericRpcHandler:
    """``inference.GRPCInferenceService/ModelInfer`` registered as the generated code does it."""

    async def model_infer(request: pb.ModelInferRequest, context: grpc.aio.ServicerContext) -> pb.ModelInferResponse:
        return response

    handler = grpc.unary_unary_rpc_method_handler(
        model_infer,
        request_deserializer=pb.ModelInferRequest.FromString,
        response_serializer=pb.ModelInferResponse.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(SERVICE, {"ModelInfer": handler})


async def serve(port: int, response: pb.ModelInferResponse) -> None:
    server = grpc.aio.server(options=(*CHANNEL_OPTIONS, ("grpc.so_reuseport", 0)))
    server.add_generic_rpc_handlers((model_infer_handler(response),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.echo_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--model_name", default="dummy", help="model_name in the answer")
    parser.add_argument("--model_version", default="2", help="model_version in the answer")
    parser.add_argument("--output", default="a", help="output tensor name")
    parser.add_argument("--shape", default="1,10", help="output shape, comma-separated")
    args = parser.parse_args(argv)
    shape = [int(dim) for dim in args.shape.split(",")]
    asyncio.run(serve(args.port, fixed_response(args.model_name, args.model_version, args.output, shape)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
