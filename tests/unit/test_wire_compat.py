"""Our third-party contracts against the descriptors shipped inside the clients people use.

KServe v2 (`inference`) is compared with tritonclient's, TensorFlow Serving (`tensorflow.serving` and the
`tensorflow` messages it carries) with ovmsclient's. The clients' descriptors are read in a subprocess and
handed over as serialized FileDescriptorProtos: tritonclient registers `inference.*` in protobuf's default
pool, as our generated stubs do, so the two cannot be imported into one process. (ovmsclient renames its
packages and would import beside ours; it goes through the same subprocess so this process only ever holds
our own descriptors.)

Compared per message: every field's name, number, label, type, message/enum type name, oneof, proto3
`optional` and explicit json_name; per enum: value names and numbers; per service: method names, request and
response types, streaming flags.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor

from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2
from ovms_grpc_client.genproto.tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_service_pb2,
    prediction_service_pb2,
)

FieldProto = descriptor_pb2.FieldDescriptorProto

# ---------------------------------------------------------------------------------------------------------------
# KServe v2: the explicit contract. A message or RPC added to grpc_predict_v2.proto without being listed here
# fails test_kserve_messages_are_all_listed / test_kserve_rpcs_match_tritonclient.

KSERVE_MESSAGES = (
    "inference.ServerLiveRequest",
    "inference.ServerLiveResponse",
    "inference.ServerReadyRequest",
    "inference.ServerReadyResponse",
    "inference.ModelReadyRequest",
    "inference.ModelReadyResponse",
    "inference.ServerMetadataRequest",
    "inference.ServerMetadataResponse",
    "inference.ModelMetadataRequest",
    "inference.ModelMetadataResponse",
    "inference.ModelMetadataResponse.TensorMetadata",
    "inference.ModelInferRequest",
    "inference.ModelInferRequest.ParametersEntry",
    "inference.ModelInferRequest.InferInputTensor",
    "inference.ModelInferRequest.InferInputTensor.ParametersEntry",
    "inference.ModelInferRequest.InferRequestedOutputTensor",
    "inference.ModelInferRequest.InferRequestedOutputTensor.ParametersEntry",
    "inference.ModelInferResponse",
    "inference.ModelInferResponse.ParametersEntry",
    "inference.ModelInferResponse.InferOutputTensor",
    "inference.ModelInferResponse.InferOutputTensor.ParametersEntry",
    "inference.ModelStreamInferResponse",
    "inference.InferParameter",
    "inference.InferTensorContents",
)

KSERVE_SERVICE = "inference.GRPCInferenceService"


@dataclass(frozen=True)
class Method:
    request: str
    response: str
    client_streaming: bool = False
    server_streaming: bool = False

    def describe(self) -> str:
        request = f"stream {self.request}" if self.client_streaming else self.request
        response = f"stream {self.response}" if self.server_streaming else self.response
        return f"({request}) returns ({response})"


KSERVE_RPCS = {
    "ServerLive": Method("inference.ServerLiveRequest", "inference.ServerLiveResponse"),
    "ServerReady": Method("inference.ServerReadyRequest", "inference.ServerReadyResponse"),
    "ModelReady": Method("inference.ModelReadyRequest", "inference.ModelReadyResponse"),
    "ServerMetadata": Method("inference.ServerMetadataRequest", "inference.ServerMetadataResponse"),
    "ModelMetadata": Method("inference.ModelMetadataRequest", "inference.ModelMetadataResponse"),
    "ModelInfer": Method("inference.ModelInferRequest", "inference.ModelInferResponse"),
    "ModelStreamInfer": Method("inference.ModelInferRequest", "inference.ModelStreamInferResponse", True, True),
}

# ---------------------------------------------------------------------------------------------------------------
# TensorFlow Serving. ovmsclient (2023.1) ships an older TFS/TF snapshot under renamed packages; our files follow
# TF Serving 2.18. What 2.18 has and that snapshot lacks is listed here, and nothing else may differ.

OVMSCLIENT_PACKAGES = {
    "ovmsclient": "tensorflow",
    "ovmsclient.serving": "tensorflow.serving",
    "ovmsclient.error": "tensorflow.error",
    "google.protobuf": "google.protobuf",
}

TFS_PACKAGES = ("tensorflow", "tensorflow.serving", "tensorflow.error")

TFS_SERVICES = {
    "tensorflow.serving.PredictionService": {
        "Classify": Method("tensorflow.serving.ClassificationRequest", "tensorflow.serving.ClassificationResponse"),
        "Regress": Method("tensorflow.serving.RegressionRequest", "tensorflow.serving.RegressionResponse"),
        "Predict": Method("tensorflow.serving.PredictRequest", "tensorflow.serving.PredictResponse"),
        "MultiInference": Method(
            "tensorflow.serving.MultiInferenceRequest", "tensorflow.serving.MultiInferenceResponse"
        ),
        "GetModelMetadata": Method(
            "tensorflow.serving.GetModelMetadataRequest", "tensorflow.serving.GetModelMetadataResponse"
        ),
    },
    "tensorflow.serving.ModelService": {
        "GetModelStatus": Method(
            "tensorflow.serving.GetModelStatusRequest", "tensorflow.serving.GetModelStatusResponse"
        ),
        "HandleReloadConfigRequest": Method(
            "tensorflow.serving.ReloadConfigRequest", "tensorflow.serving.ReloadConfigResponse"
        ),
    },
}

# Reached only through google.protobuf.Any (GetModelMetadataResponse.metadata["signature_def"]), so the
# completeness check starts from it as well as from the RPC types.
TFS_ANY_PAYLOADS = ("tensorflow.serving.SignatureDefMap",)

# Messages and enums added to TF Serving after ovmsclient's snapshot.
NEWER_THAN_OVMSCLIENT_TYPES = {
    # Predict's streamed-variant options and per-request options (PredictRequest fields 5 and 7).
    "tensorflow.serving.PredictStreamedOptions",
    "tensorflow.serving.PredictStreamedOptions.SplitDimensionsEntry",
    "tensorflow.serving.PredictStreamedOptions.RequestState",
    "tensorflow.serving.PredictRequest.RequestOptions",
    "tensorflow.serving.PredictRequest.RequestOptions.DeterministicMode",
    # Metric deltas reported by HandleReloadConfigRequest (ReloadConfigResponse.metric).
    "tensorflow.serving.Metric",
    # Default input values of a signature (SignatureDef field 4).
    "tensorflow.SignatureDef.DefaultsEntry",
    # Bits of SamplingConfig.attributes (field 2).
    "tensorflow.serving.SamplingConfig.Attributes",
}

# (message, field number) added after ovmsclient's snapshot.
NEWER_THAN_OVMSCLIENT_FIELDS = {
    ("tensorflow.serving.PredictRequest", 5): "predict_streamed_options",
    ("tensorflow.serving.PredictRequest", 6): "client_id",
    ("tensorflow.serving.PredictRequest", 7): "request_options",
    ("tensorflow.serving.ReloadConfigRequest", 2): "metric_names",
    ("tensorflow.serving.ReloadConfigResponse", 2): "metric",
    ("tensorflow.SignatureDef", 4): "defaults",
    ("tensorflow.TensorProto", 18): "float8_val",
    ("tensorflow.StructuredValue", 55): "tensor_value",
    ("tensorflow.StructuredValue", 56): "numpy_value",
    ("tensorflow.TypeSpecProto", 4): "num_flat_components",
    ("tensorflow.serving.SamplingConfig", 2): "attributes",
}

# (message, field number) that ovmsclient's snapshot still has and TF Serving 2.18 removed (now `reserved`).
REMOVED_SINCE_OVMSCLIENT_FIELDS = {
    # The single-servable form, superseded by `servables`.
    ("tensorflow.serving.FileSystemStoragePathSourceConfig", 1): "servable_name",
    ("tensorflow.serving.FileSystemStoragePathSourceConfig", 2): "base_path",
}

# (enum, value number) added after ovmsclient's snapshot: float8 and 4-bit tensor types, newer type-spec classes.
NEWER_THAN_OVMSCLIENT_ENUM_VALUES = {
    ("tensorflow.DataType", 24): "DT_FLOAT8_E5M2",
    ("tensorflow.DataType", 25): "DT_FLOAT8_E4M3FN",
    ("tensorflow.DataType", 29): "DT_INT4",
    ("tensorflow.DataType", 30): "DT_UINT4",
    ("tensorflow.DataType", 124): "DT_FLOAT8_E5M2_REF",
    ("tensorflow.DataType", 125): "DT_FLOAT8_E4M3FN_REF",
    ("tensorflow.DataType", 129): "DT_INT4_REF",
    ("tensorflow.DataType", 130): "DT_UINT4_REF",
    ("tensorflow.TypeSpecProto.TypeSpecClass", 12): "REGISTERED_TYPE_SPEC",
    ("tensorflow.TypeSpecProto.TypeSpecClass", 13): "EXTENSION_TYPE_SPEC",
}

# ---------------------------------------------------------------------------------------------------------------
# Reading descriptors.

# Runs in a fresh interpreter: imports the named modules and prints every file they define or depend on
# (dependencies first) as base64 FileDescriptorProtos in a JSON list.
_DUMP_DESCRIPTORS = textwrap.dedent(
    """
    import base64, importlib, json, sys
    from google.protobuf import descriptor_pb2

    files, seen = [], set()

    def walk(fd):
        if fd.name in seen:
            return
        seen.add(fd.name)
        for dep in fd.dependencies:
            walk(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        files.append(base64.b64encode(proto.SerializeToString()).decode())

    for name in sys.argv[1:]:
        walk(importlib.import_module(name).DESCRIPTOR)
    print(json.dumps(files))
    """
)


def reference_files(*modules: str) -> list[descriptor_pb2.FileDescriptorProto]:
    """The files of `modules` (and their imports) as another process sees them."""
    done = subprocess.run(
        [sys.executable, "-c", _DUMP_DESCRIPTORS, *modules], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"reading descriptors of {modules} failed:\n{done.stderr}"
    files = []
    for encoded in json.loads(done.stdout):
        proto = descriptor_pb2.FileDescriptorProto()
        proto.ParseFromString(base64.b64decode(encoded))
        files.append(proto)
    return files


def our_files(*modules: ModuleType) -> list[descriptor_pb2.FileDescriptorProto]:
    seen: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def walk(fd: FileDescriptor) -> None:
        if fd.name in seen:
            return
        for dep in fd.dependencies:
            walk(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        fd.CopyToProto(proto)
        seen[fd.name] = proto

    for module in modules:
        walk(module.DESCRIPTOR)
    return list(seen.values())


@dataclass(frozen=True)
class Field:
    name: str
    number: int
    label: str
    type: str
    type_name: str  # full name without the leading dot; empty for scalars
    oneof: str  # the real oneof it belongs to; empty if none (proto3 `optional` is not a real oneof)
    proto3_optional: bool
    json_name: str  # only when set explicitly; empty means the default

    def describe(self) -> str:
        """The field as .proto source would declare it, e.g. `repeated int64 shape = 3`."""
        label = {"LABEL_REPEATED": "repeated ", "LABEL_REQUIRED": "required "}.get(self.label, "")
        label += "optional " * self.proto3_optional
        kind = self.type_name or self.type.removeprefix("TYPE_").lower()
        options = f" [json_name = {self.json_name!r}]" if self.json_name else ""
        in_oneof = f" (in oneof {self.oneof})" if self.oneof else ""
        return f"{label}{kind} {self.name} = {self.number}{options}{in_oneof}"


@dataclass(frozen=True)
class Message:
    fields: dict[int, Field]
    map_entry: bool


@dataclass
class Contract:
    """Messages, enums and services of a set of files, by full name (after renaming packages)."""

    messages: dict[str, Message]
    enums: dict[str, dict[int, str]]
    services: dict[str, dict[str, Method]]
    packages: set[str]


def contract(files: Iterable[descriptor_pb2.FileDescriptorProto], rename: Callable[[str], str] = str) -> Contract:
    """Index `files`; `rename` maps a package to the one it stands for (ovmsclient renamed TF's)."""
    files = list(files)
    # Full name -> renamed full name, for every message and enum (type names are renamed through it).
    names: dict[str, str] = {}

    def collect(package: str, prefix: str, messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
        for message in messages:
            relative = f"{prefix}{message.name}"
            names[f"{package}.{relative}"] = f"{rename(package)}.{relative}"
            collect(package, f"{relative}.", message.nested_type)
            for enum in message.enum_type:
                names[f"{package}.{relative}.{enum.name}"] = f"{rename(package)}.{relative}.{enum.name}"

    for file in files:
        collect(file.package, "", file.message_type)
        for enum in file.enum_type:
            names[f"{file.package}.{enum.name}"] = f"{rename(file.package)}.{enum.name}"

    def type_name(reference: str) -> str:
        return names[reference.removeprefix(".")] if reference else ""

    result = Contract({}, {}, {}, {file.package for file in files})

    def add_enums(full_prefix: str, enums: Iterable[descriptor_pb2.EnumDescriptorProto]) -> None:
        for enum in enums:
            result.enums[f"{full_prefix}.{enum.name}"] = {value.number: value.name for value in enum.value}

    def add_messages(full_prefix: str, messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
        for message in messages:
            full_name = f"{full_prefix}.{message.name}"
            fields = {}
            for field in message.field:
                real_oneof = field.HasField("oneof_index") and not field.proto3_optional
                fields[field.number] = Field(
                    name=field.name,
                    number=field.number,
                    label=FieldProto.Label.Name(field.label),
                    type=FieldProto.Type.Name(field.type),
                    type_name=type_name(field.type_name),
                    oneof=message.oneof_decl[field.oneof_index].name if real_oneof else "",
                    proto3_optional=field.proto3_optional,
                    json_name=field.json_name if field.HasField("json_name") else "",
                )
            result.messages[full_name] = Message(fields, message.options.map_entry)
            add_messages(full_name, message.nested_type)
            add_enums(full_name, message.enum_type)

    for file in files:
        add_messages(rename(file.package), file.message_type)
        add_enums(rename(file.package), file.enum_type)
        for service in file.service:
            result.services[f"{rename(file.package)}.{service.name}"] = {
                method.name: Method(
                    type_name(method.input_type),
                    type_name(method.output_type),
                    method.client_streaming,
                    method.server_streaming,
                )
                for method in service.method
            }
    return result


def field_differences(
    message: str,
    ours: Message,
    theirs: Message,
    newer_fields: dict[tuple[str, int], str] | None = None,
    removed_fields: dict[tuple[str, int], str] | None = None,
) -> list[str]:
    """One line per difference: message, field number, ours vs theirs.

    `newer_fields` may be ours only, `removed_fields` theirs only (both by (message, number) -> field name).
    """
    newer_fields, removed_fields = newer_fields or {}, removed_fields or {}
    found = []
    if ours.map_entry != theirs.map_entry:
        found.append(f"{message}: map entry: ours {ours.map_entry}, theirs {theirs.map_entry}")
    for number in sorted(ours.fields.keys() | theirs.fields.keys()):
        mine, other = ours.fields.get(number), theirs.fields.get(number)
        if mine == other:
            continue
        if other is None and mine is not None and newer_fields.get((message, number)) == mine.name:
            continue
        if mine is None and other is not None and removed_fields.get((message, number)) == other.name:
            continue
        found.append(
            f"{message} field {number}: ours `{mine.describe() if mine else 'missing'}`, "
            f"theirs `{other.describe() if other else 'missing'}`"
        )
    return found


def method_differences(
    service: str, expected: dict[str, Method], actual: dict[str, Method] | None, who: str, *, exact: bool
) -> list[str]:
    """One line per RPC that differs; with `exact`, extra RPCs in `actual` count too."""
    if actual is None:
        return [f"{who}: no service {service}"]
    names = expected.keys() | actual.keys() if exact else expected.keys()
    return [
        f"{service}.{name}: expected {expected[name].describe() if name in expected else 'missing'}, "
        f"{who} {actual[name].describe() if name in actual else 'missing'}"
        for name in sorted(names)
        if expected.get(name) != actual.get(name)
    ]


def reachable(contract_: Contract, roots: Iterable[str]) -> set[str]:
    """Full names of the messages and enums that `roots` reach through their fields."""
    found: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        message = contract_.messages.get(name)
        if message is not None:
            pending += [field.type_name for field in message.fields.values() if field.type_name]
    return found


# ---------------------------------------------------------------------------------------------------------------
# Fixtures: each client's descriptors are read once per module.


@pytest.fixture(scope="module")
def kserve_ours() -> Contract:
    return contract(our_files(grpc_predict_v2_pb2))


@pytest.fixture(scope="module")
def kserve_theirs() -> Contract:
    return contract(reference_files("tritonclient.grpc.service_pb2"))


def ovmsclient_package(package: str) -> str:
    assert package in OVMSCLIENT_PACKAGES, (
        f"ovmsclient's descriptors use package {package!r}, not one of {sorted(OVMSCLIENT_PACKAGES)}: "
        "update OVMSCLIENT_PACKAGES"
    )
    return OVMSCLIENT_PACKAGES[package]


@pytest.fixture(scope="module")
def tfs_ours() -> Contract:
    return contract(our_files(prediction_service_pb2, model_service_pb2, get_model_metadata_pb2))


@pytest.fixture(scope="module")
def tfs_theirs() -> Contract:
    files = reference_files(
        "ovmsclient.tfs_compat.protos.tensorflow_serving.apis.prediction_service_pb2",
        "ovmsclient.tfs_compat.protos.tensorflow_serving.apis.model_service_pb2",
    )
    return contract(files, rename=ovmsclient_package)


def tfs_types(contract_: Contract) -> list[str]:
    return sorted(
        name for name in [*contract_.messages, *contract_.enums] if name.rsplit(".", 1)[0].startswith(TFS_PACKAGES)
    )


# ---------------------------------------------------------------------------------------------------------------
# KServe v2 against tritonclient.


def test_kserve_messages_are_all_listed(kserve_ours: Contract) -> None:
    ours = {name for name in kserve_ours.messages if name.startswith("inference.")}
    unlisted, undefined = sorted(ours - set(KSERVE_MESSAGES)), sorted(set(KSERVE_MESSAGES) - ours)
    assert not unlisted, f"messages of ours missing from KSERVE_MESSAGES: {unlisted}"
    assert not undefined, f"KSERVE_MESSAGES entries we do not define: {undefined}"
    assert [name for name in kserve_ours.enums if name.startswith("inference.")] == [], "unexpected enums"
    assert kserve_ours.packages == {"inference"}, "grpc_predict_v2.proto should import nothing"


@pytest.mark.parametrize("message", KSERVE_MESSAGES)
def test_kserve_message_fields_match_tritonclient(message: str, kserve_ours: Contract, kserve_theirs: Contract) -> None:
    assert message in kserve_theirs.messages, f"{message} is not in tritonclient's descriptors"
    differences = field_differences(message, kserve_ours.messages[message], kserve_theirs.messages[message])
    assert not differences, "differences from tritonclient:\n" + "\n".join(differences)


def test_kserve_rpcs_match_tritonclient(kserve_ours: Contract, kserve_theirs: Contract) -> None:
    assert set(kserve_ours.services) == {KSERVE_SERVICE}
    # Ours has exactly the listed RPCs; tritonclient has them among Triton's extensions.
    differences = method_differences(
        KSERVE_SERVICE, KSERVE_RPCS, kserve_ours.services[KSERVE_SERVICE], "ours", exact=True
    )
    differences += method_differences(
        KSERVE_SERVICE, KSERVE_RPCS, kserve_theirs.services.get(KSERVE_SERVICE), "tritonclient", exact=False
    )
    assert not differences, "\n".join(differences)


# ---------------------------------------------------------------------------------------------------------------
# TensorFlow Serving against ovmsclient.


def test_ovmsclient_packages_are_the_renamed_tfs_ones(tfs_theirs: Contract) -> None:
    # The mapping applied by the tfs_theirs fixture: any other package would have failed there.
    assert tfs_theirs.packages == set(OVMSCLIENT_PACKAGES)


def test_tfs_rpcs_match_ovmsclient(tfs_ours: Contract, tfs_theirs: Contract) -> None:
    assert set(tfs_ours.services) == set(TFS_SERVICES)
    assert set(tfs_theirs.services) == set(TFS_SERVICES)
    differences = []
    for service, expected in TFS_SERVICES.items():
        differences += method_differences(service, expected, tfs_ours.services[service], "ours", exact=True)
        differences += method_differences(service, expected, tfs_theirs.services[service], "ovmsclient", exact=True)
    assert not differences, "\n".join(differences)


def test_tfs_types_exist_in_ovmsclient(tfs_ours: Contract, tfs_theirs: Contract) -> None:
    known = {*tfs_theirs.messages, *tfs_theirs.enums}
    missing = [name for name in tfs_types(tfs_ours) if name not in known and name not in NEWER_THAN_OVMSCLIENT_TYPES]
    assert not missing, (
        "types of ours that ovmsclient lacks (list them in NEWER_THAN_OVMSCLIENT_TYPES only if TF Serving 2.18 "
        "has them):\n" + "\n".join(missing)
    )


def test_tfs_contract_is_complete(tfs_ours: Contract, tfs_theirs: Contract) -> None:
    """Every type that ovmsclient's services reach (and the Any payloads) is ours too."""
    roots = [name for methods in TFS_SERVICES.values() for m in methods.values() for name in (m.request, m.response)]
    needed = reachable(tfs_theirs, [*roots, *TFS_ANY_PAYLOADS])
    missing = sorted(needed - {*tfs_ours.messages, *tfs_ours.enums})
    assert not missing, "types that TFS clients use and we do not define:\n" + "\n".join(missing)


def test_tfs_allow_lists_are_exact(tfs_ours: Contract, tfs_theirs: Contract) -> None:
    """Each entry names a real difference; a stale one (say, after an ovmsclient update) fails."""
    for name in NEWER_THAN_OVMSCLIENT_TYPES:
        assert name in tfs_ours.messages or name in tfs_ours.enums, f"{name}: not ours"
        assert name not in tfs_theirs.messages and name not in tfs_theirs.enums, f"{name}: ovmsclient has it"
    for (message, number), field_name in NEWER_THAN_OVMSCLIENT_FIELDS.items():
        assert tfs_ours.messages[message].fields[number].name == field_name, f"{message} field {number}"
        assert number not in tfs_theirs.messages[message].fields, f"{message} field {number}: ovmsclient has it"
    for (message, number), field_name in REMOVED_SINCE_OVMSCLIENT_FIELDS.items():
        assert number not in tfs_ours.messages[message].fields, f"{message} field {number}: ours has it"
        assert tfs_theirs.messages[message].fields[number].name == field_name, f"{message} field {number}"
    for (enum, number), value_name in NEWER_THAN_OVMSCLIENT_ENUM_VALUES.items():
        assert tfs_ours.enums[enum].get(number) == value_name, f"{enum} value {number}"
        assert number not in tfs_theirs.enums[enum], f"{enum} value {number}: ovmsclient has it"


def test_tfs_message_fields_match_ovmsclient(tfs_ours: Contract, tfs_theirs: Contract) -> None:
    differences = []
    for name in tfs_types(tfs_ours):
        if name in tfs_ours.messages and name in tfs_theirs.messages:
            differences += field_differences(
                name,
                tfs_ours.messages[name],
                tfs_theirs.messages[name],
                NEWER_THAN_OVMSCLIENT_FIELDS,
                REMOVED_SINCE_OVMSCLIENT_FIELDS,
            )
    assert not differences, "differences from ovmsclient:\n" + "\n".join(differences)


def test_tfs_enum_values_match_ovmsclient(tfs_ours: Contract, tfs_theirs: Contract) -> None:
    differences = []
    for name in tfs_types(tfs_ours):
        if name not in tfs_ours.enums or name not in tfs_theirs.enums:
            continue
        ours, theirs = tfs_ours.enums[name], tfs_theirs.enums[name]
        for number in sorted(ours.keys() | theirs.keys()):
            mine, other = ours.get(number), theirs.get(number)
            if mine == other or (other is None and NEWER_THAN_OVMSCLIENT_ENUM_VALUES.get((name, number)) == mine):
                continue
            differences.append(f"{name} value {number}: ours {mine or 'missing'}, theirs {other or 'missing'}")
    assert not differences, "differences from ovmsclient:\n" + "\n".join(differences)
