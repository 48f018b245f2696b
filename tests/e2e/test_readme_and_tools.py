"""README's examples work as pasted, in order, against the server its command 1 starts; grpcurl and
grpc-health-probe report errors and health as they should."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.server_process import REPO, SERVING, ServerProcess, free_port, health_status, rest_ready
from tests.tooling import tool_path

EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\n```(\w+)\n(.*?)```", re.S)


def readme_examples() -> list[tuple[str, str, str]]:
    """(name, language, code) of every marked README example, in README order."""
    return EXAMPLE.findall((REPO / "README.md").read_text())


def json_documents(text: str) -> list[Any]:
    """Every JSON object in ``text`` (curl prints bodies back to back, grpcurl one per call)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) >= 0:
        try:
            document, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            at += 1
            continue
        found.append(document)
        at = end
    return found


class Readme:
    """The README's examples run as pasted, with its ports and export folder moved to free ones."""

    def __init__(self, tmp: Path) -> None:
        self.ports = {"9000": str(free_port()), "8000": str(free_port()), "9001": str(free_port())}
        self.tmp = tmp
        # The console scripts (ovms-grpc) of the Python running the tests, as a venv would provide them.
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    def localize(self, code: str) -> str:
        code = re.sub(r"\b(9000|8000|9001)\b", lambda m: self.ports[m.group(1)], code)
        return code.replace("/tmp/ovms-demo", str(self.tmp / "ovms-demo"))

    def run(self, language: str, code: str, timeout: float = 300) -> str:
        argv = [sys.executable, "-c", code] if language == "python" else ["bash", "-e", "-o", "pipefail", "-c", code]
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=self.env,
            start_new_session=True,  # a block's background server goes with its group, even on failure
        )  # fmt: skip
        try:
            output, _ = process.communicate(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        assert process.returncode == 0, f"{language} example failed ({process.returncode}):\n{code}\n{output}"
        return output


def check_tritonclient(output: str) -> None:
    lines = output.splitlines()
    assert lines[0] == "True ['1', '2']"
    assert lines[1] == "[[ 2.  3.  4.  5.  6.  7.  8.  9. 10. 11.]]"
    assert lines[2] == "[[ 1.  2.  3.  4.  5.  6.  7.  8.  9. 10.]]"


def check_python_client(output: str) -> None:
    lines = output.splitlines()  # the streamed text between may hold line breaks of its own
    assert lines[0] == "True [[2. 2. 2. 2. 2. 2. 2. 2. 2. 2.]]"
    assert re.fullmatch(r"usage: [1-9]\d* [1-8]", lines[-2])
    assert lines[-1] == "INVALID_ARGUMENT INVALID_SHAPE"


def check_grpcurl(output: str) -> None:
    assert "inference.GRPCInferenceService" in output.split() and "grpc.reflection.v1.ServerReflection" in output
    assert "rpc ModelInfer ( .inference.ModelInferRequest ) returns ( .inference.ModelInferResponse );" in output
    answer, *chat = json_documents(output)
    assert answer["model_name"] == "dummy" and answer["model_version"] == "1"
    values = np.frombuffer(base64.b64decode(answer["raw_output_contents"][0]), np.float32)
    np.testing.assert_array_equal(values, np.arange(10) + 1)
    assert chat[0]["choices"][0]["role"] == "assistant" and chat[-1]["usage"]["completion_tokens"] <= 4
    assert "status: SERVING" in output


def check_quickstart(output: str) -> None:
    """The Go and Java example programs print the same four facts."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", output)  # Maven's colour resets, even in batch mode
    lines = [line for line in text.splitlines() if line.strip()]  # the chat text may hold line breaks
    assert lines[0] == "health: SERVING"
    assert [line.split(":", 1)[0] for line in lines[1:3]] == ["dummy v1", "dummy v2"]
    numbers = [[float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", line.split(":", 1)[1])] for line in lines[1:3]]
    assert numbers == [[float(v + 1) for v in range(10)], [float(v + 2) for v in range(10)]]
    assert lines[3].startswith("llm:") and re.fullmatch(
        r"usage: prompt_tokens=[1-9]\d* completion_tokens=[1-8]", lines[-1]
    )


def check_rest(output: str) -> None:
    assert output.splitlines()[0] == "200"
    metadata, infer, config = json_documents(output)
    assert metadata["versions"] == ["1", "2"]
    assert infer["outputs"][0]["data"] == [float(v + 1) for v in range(10)]
    assert set(config) == {"dummy", "resnet_like", "llm", "embed", "rerank"}


def check_own_model(output: str) -> None:
    (metadata,) = json_documents(output)
    assert metadata["name"] == "resnet" and metadata["inputs"][0]["name"] == "input"
    assert metadata["inputs"][0]["shape"] == ["1", "3", "224", "224"]


def check_config(output: str) -> None:
    status, reload = json_documents(output)
    assert set(status["models"]) == {"resnet", "dummy"}
    versions = status["models"]["dummy"]["model_version_status"]
    assert [(v["version"], v["state"]) for v in versions] == [
        ("1", "VERSION_STATE_AVAILABLE"),
        ("2", "VERSION_STATE_AVAILABLE"),
    ]
    assert reload["status"]["models"].keys() == status["models"].keys()


def check_openai(output: str) -> None:
    lines = output.splitlines()
    assert lines[0] == "length 16"
    assert lines[1] and lines[1].isascii()


def check_embeddings_rerank(output: str) -> None:
    vectors, ranked = output.splitlines()
    count, dimensions, tokens = (int(v) for v in vectors.split())
    assert (count, dimensions) == (2, 32) and tokens > 0
    assert ranked == "[0, 1, 2]"


def check_tool_call(output: str) -> None:
    assert output.strip() == "tool_calls get_weather ['city']"


def check_generation_grpcurl(output: str) -> None:
    chunks = json_documents(output)
    assert chunks and chunks[-1]["usage"]["completion_tokens"] == 8


CHECKS: dict[str, Callable[[str], None] | None] = {
    "client-packages": None,  # pip reports what it installed; the next examples use it
    "tritonclient": check_tritonclient,
    "python-client": check_python_client,
    "tools": None,
    "grpcurl": check_grpcurl,
    "go": check_quickstart,
    "java": check_quickstart,
    "rest": check_rest,
    "own-model": check_own_model,
    "config": check_config,
    "openai": check_openai,
    "embeddings-rerank": check_embeddings_rerank,
    "tool-call": check_tool_call,
    "generation-grpcurl": check_generation_grpcurl,
}


def test_readme_from_top_to_bottom(tmp_path: Path) -> None:
    """Command 1 starts the server; every example then runs in README order against it, as pasted."""
    examples = readme_examples()
    assert examples[0][0] == "setup"
    assert [name for name, _, _ in examples[1:]] == list(CHECKS), "a new README example needs a check here"
    readme = Readme(tmp_path)
    setup = examples[0][2].splitlines()
    command_1 = next(line for line in setup if line.startswith("python3 -m venv"))
    serve = readme.localize(command_1.split("&&")[-1].strip())
    assert serve.startswith("ovms-grpc --demo")
    command_2 = next(line for line in setup if "scripts/test" in line)
    assert command_2.split("&&")[-1].strip() == "scripts/test"  # what .ci/run runs after its install
    server = subprocess.Popen(
        shlex.split(serve), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path, env=readme.env
    )
    try:
        grpc_address, rest_url = f"127.0.0.1:{readme.ports['9000']}", f"http://127.0.0.1:{readme.ports['8000']}"
        deadline = time.monotonic() + 180
        while not (health_status(grpc_address, timeout=1.0) == SERVING and rest_ready(rest_url)):
            assert server.poll() is None, "command 1's server exited"
            assert time.monotonic() < deadline, "command 1's server did not become ready"
            time.sleep(0.2)
        for name, language, code in examples[1:]:
            output = readme.run(language, readme.localize(code))
            check = CHECKS[name]
            if check is not None:
                check(output)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def demo_server(server_factory) -> ServerProcess:
    return server_factory("--demo")


def test_grpcurl_reports_errors_with_ovms_codes(demo_server: ServerProcess) -> None:
    request = json.dumps({"model_name": "dummy", "model_version": "3", "inputs": []})
    argv = [tool_path("grpcurl"), "-plaintext", "-d", request, demo_server.address,
            "inference.GRPCInferenceService/ModelInfer"]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Code: NotFound" in result.stderr
    assert "version 3 not found (available versions: 1, 2)" in result.stderr


def test_health_probe_fails_for_unknown_service(demo_server: ServerProcess) -> None:
    argv = [tool_path("grpc-health-probe"), f"-addr={demo_server.address}", "-service=no.such.Service"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "NotFound" in result.stderr or "NOT_FOUND" in result.stderr.upper()


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_reflection_is_served_as_v1_and_v1alpha(demo_server: ServerProcess, version: str) -> None:
    import grpc
    from grpc_reflection.v1alpha import reflection_pb2 as pb  # v1 has the same messages and field numbers

    with grpc.insecure_channel(demo_server.address) as channel:
        call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=pb.ServerReflectionRequest.SerializeToString,
            response_deserializer=pb.ServerReflectionResponse.FromString,
        )
        requests = [pb.ServerReflectionRequest(list_services=""),
                    pb.ServerReflectionRequest(file_containing_symbol="inference.GRPCInferenceService")]  # fmt: skip
        listing, described = list(call(iter(requests), timeout=30))
    names = {service.name for service in listing.list_services_response.service}
    assert {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
            "inference.GRPCInferenceService", "ovms.generation.v1.GenerationService"} <= names  # fmt: skip
    assert described.file_descriptor_response.file_descriptor_proto
