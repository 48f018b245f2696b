# ovms-grpc image: `docker build -t ovms-grpc .` then
#   docker run --rm -p 9000:9000 ovms-grpc                         # the built-in demo models
#   docker run --rm -p 9000:9000 -v $PWD/models/resnet:/models/resnet:ro ovms-grpc --model_path /models/resnet --model_name resnet --port 9000
# OpenVINO's CPU plugin needs no system library beyond the slim image's own
# (glibc, libstdc++, libgcc_s, zlib: checked with ldd on the openvino wheel's
# libs; it bundles TBB and hwloc). The GPU plugin would also need an OpenCL ICD
# loader (ocl-icd-libopencl1) and Intel's GPU runtime: not installed here.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ovms_grpc ./ovms_grpc
COPY gateway ./gateway
COPY bench ./bench
COPY clients/python ./clients/python
RUN pip install . && ovms-grpc --help >/dev/null

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OVMS_GRPC_HEALTHCHECK_PORT=9000
# uid/gid 5000 "ovms", as in OVMS's own image, so mounted model folders keep working.
RUN groupadd --gid 5000 ovms \
 && useradd --uid 5000 --gid 5000 --create-home --shell /usr/sbin/nologin ovms
COPY --from=build /opt/venv /opt/venv
USER ovms
WORKDIR /home/ovms
EXPOSE 9000 8000
# gRPC health check of the whole server (""), on OVMS_GRPC_HEALTHCHECK_PORT:
# set that variable when serving gRPC on another port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; c = grpc.insecure_channel('127.0.0.1:' + os.environ['OVMS_GRPC_HEALTHCHECK_PORT']); r = g.HealthStub(c).Check(h.HealthCheckRequest(service=''), timeout=4); sys.exit(0 if r.status == h.HealthCheckResponse.SERVING else 1)"]
ENTRYPOINT ["ovms-grpc"]
CMD ["--demo", "--port", "9000", "--rest_port", "8000"]
