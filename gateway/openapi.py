"""The OpenAPI document of the REST contract, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "Invalid request (bad JSON, tensor or URL)",
        404: "Unknown model or version, or a version not loaded",
        406: "Method not supported on this URL",
        412: "Precondition failed (e.g. a config that does not validate, a model that cannot be reshaped)",
        413: "Request too large",
        429: "Too many requests are waiting for this model",
        500: "Internal error",
        501: "Not implemented",
        503: "The server is not ready or not reachable",
        504: "Deadline exceeded",
    }
    return {str(code): {"description": reasons[code], "content": _json(ERROR)} for code in codes}


MODEL = {
    "name": "model",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[^/]+$"},
    "example": "dummy",
}
VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}, "example": 1}
INFER_EXAMPLE = {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "data": list(range(10))}]}

TENSOR_METADATA = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
    },
}

PARAMETERS = {
    "type": "object",
    "additionalProperties": {"anyOf": [{"type": "boolean"}, {"type": "number"}, {"type": "string"}]},
}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "ServerMetadata": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "ModelMetadata": {
        "type": "object",
        "required": ["name", "versions", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": TENSOR_METADATA},
            "outputs": {"type": "array", "items": TENSOR_METADATA},
        },
    },
    "InferRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": PARAMETERS,
            "inputs": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name", "shape", "datatype"],
                    "properties": {
                        "name": {"type": "string"},
                        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                        "datatype": {
                            "type": "string",
                            "enum": [
                                "BOOL",
                                "UINT8",
                                "UINT16",
                                "UINT32",
                                "UINT64",
                                "INT8",
                                "INT16",
                                "INT32",
                                "INT64",
                                "FP16",
                                "FP32",
                                "FP64",
                                "BYTES",
                            ],
                        },  # fmt: skip
                        "parameters": PARAMETERS,
                        "data": {"type": "array"},
                    },
                },
            },
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "parameters": PARAMETERS},
                },
            },
        },
    },
    "InferResponse": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "datatype", "shape"],
                    "properties": {
                        "name": {"type": "string"},
                        "datatype": {"type": "string"},
                        "shape": {"type": "array", "items": {"type": "integer"}},
                        "data": {"type": "array"},
                        "parameters": PARAMETERS,
                    },
                },
            },
        },
    },
    "TfsStatus": {
        "type": "object",
        "required": ["model_version_status"],
        "properties": {"model_version_status": {"type": "array", "items": {"type": "object"}}},
    },
    "TfsPredictRequest": {
        "type": "object",
        "properties": {"signature_name": {"type": "string"}, "instances": {"type": "array"}, "inputs": {}},
    },
    "ConfigStatus": {
        "type": "object",
        "description": "Keyed by model name, as OVMS's /v1/config.",
        "additionalProperties": {
            "type": "object",
            "required": ["model_version_status"],
            "properties": {
                "model_version_status": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["version", "state", "status"],
                        "properties": {
                            "version": {"type": "string"},
                            "state": {
                                "type": "string",
                                "enum": ["START", "LOADING", "AVAILABLE", "UNLOADING", "END"],
                            },  # fmt: skip
                            "status": {
                                "type": "object",
                                "required": ["error_code", "error_message"],
                                "properties": {"error_code": {"type": "string"}, "error_message": {"type": "string"}},
                            },
                        },
                    },
                }
            },
        },
    },
}


def _get(summary: str, description: str, schema: dict, *errors: int) -> dict:
    """A GET operation answering JSON ``schema`` with 200, or an error body with ``errors``."""
    return {
        "get": {
            "summary": summary,
            "responses": {"200": {"description": description, "content": _json(schema)}, **_errors(*errors)},
        }
    }


def _empty_ok(description: str) -> dict:
    return {"200": {"description": description}}


def _model_routes(suffix: str, operation: dict, with_version: bool) -> dict:
    base = "/v2/models/{model}" + ("/versions/{version}" if with_version else "")
    parameters = [MODEL, VERSION] if with_version else [MODEL]
    return {base + suffix: {key: {**value, "parameters": parameters} for key, value in operation.items()}}


def build() -> dict[str, Any]:
    infer = {
        "post": {
            "summary": "KServe v2 inference (JSON, or JSON + binary data with Inference-Header-Content-Length)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/InferRequest"},
                        "example": INFER_EXAMPLE,
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "Outputs (JSON; binary outputs follow the JSON when requested)",
                    "content": _json({"$ref": "#/components/schemas/InferResponse"}),
                },
                **_errors(400, 404, 412, 413, 429, 500, 503, 504),
            },
        }
    }
    metadata = _get("KServe v2 model metadata", "Metadata", {"$ref": "#/components/schemas/ModelMetadata"},
                    400, 404, 500, 503)  # fmt: skip
    ready = {
        "get": {
            "summary": "KServe v2 model readiness",
            "responses": {**_empty_ok("The version is AVAILABLE"), **_errors(400, 404, 500, 503)},
        }
    }
    paths: dict[str, Any] = {
        "/v2/health/live": {"get": {"summary": "Liveness", "responses": {**_empty_ok("Live"), **_errors(500, 503)}}},
        "/v2/health/ready": {"get": {"summary": "Readiness", "responses": {**_empty_ok("Ready"), **_errors(500, 503)}}},
        "/v2": _get("KServe v2 server metadata", "Metadata", {"$ref": "#/components/schemas/ServerMetadata"}, 500, 503),
        "/v1/config": _get(
            "Status of every model version (OVMS)", "Status", {"$ref": "#/components/schemas/ConfigStatus"}, 500, 503
        ),
        "/v1/config/reload": {
            "post": {
                "summary": "Reload config.json and rescan version folders (OVMS)",
                "responses": {
                    "200": {
                        "description": "Nothing changed",
                        "content": _json({"$ref": "#/components/schemas/ConfigStatus"}),
                    },
                    "201": {"description": "Reloaded", "content": _json({"$ref": "#/components/schemas/ConfigStatus"})},
                    **_errors(412, 500, 503),
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics of the server and the gateway (needs --metrics_enable)",
                "responses": {
                    "200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    **_errors(400, 500, 503),
                },
            }
        },
    }
    tfs_status = _get("TensorFlow Serving model status", "Version states", {"$ref": "#/components/schemas/TfsStatus"},
                      400, 404, 500, 503)  # fmt: skip
    tfs_metadata = _get("TensorFlow Serving model metadata (signature_def)", "Metadata", {"type": "object"},
                        400, 404, 500, 503)  # fmt: skip
    tfs_predict = {
        "post": {
            "summary": 'TensorFlow Serving predict: row (instances) or columnar (inputs) format; {"b64": ...} binary',
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/TfsPredictRequest"},
                        "example": {"instances": [list(range(10))]},
                    }
                },
            },
            "responses": {
                "200": {"description": "predictions or outputs", "content": _json({"type": "object"})},
                **_errors(400, 404, 412, 413, 429, 500, 503, 504),
            },
        }
    }
    for with_version in (False, True):
        base = "/v1/models/{model}" + ("/versions/{version}" if with_version else "")
        parameters = [MODEL, VERSION] if with_version else [MODEL]
        for suffix, operation in (("", tfs_status), ("/metadata", tfs_metadata), (":predict", tfs_predict)):
            paths[base + suffix] = {k: {**v, "parameters": parameters} for k, v in operation.items()}
        paths.update(_model_routes("", metadata, with_version))
        paths.update(_model_routes("/ready", ready, with_version))
        paths.update(_model_routes("/infer", infer, with_version))
    return {
        "openapi": "3.0.3",
        "info": {"title": "ovms-grpc REST gateway", "version": "0.1.0"},
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }
