"""The REST gateway: translates HTTP (KServe v2 REST, /v1/config) into gRPC calls to the server.

It holds one grpc.aio channel and no model logic.
"""
