"""ovms-grpc: a gRPC-first, OVMS-compatible model server for OpenVINO."""

__version__ = "0.1.0"
