"""EleutherAI lm-evaluation-harness against the gateway, offline, on tasks defined in local files.

``local-completions`` runs a multiple-choice task: each choice is one loglikelihood request
(``echo``, ``logprobs: 1``, ``max_tokens: 1``, the prompt sent as text and re-tokenized by the
server); its scores must equal the continuation's logprobs computed in this process by
openvino_genai on the same token ids. ``local-chat-completions`` runs a generation task; its
greedy answers must equal in-process openvino_genai's over the same chat template.
Both run with ``num_concurrent`` 2 against a server with prefix caching on (the choices of one
question share their context, so the prefix cache is hit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import genai_reference
from tests.server_process import ServerProcess

TASKS = Path(__file__).parent / "lm_eval_local"


@pytest.fixture(scope="module")
def server(server_factory, llm_dir: Path) -> ServerProcess:
    return server_factory("--task", "text_generation", "--model_path", str(llm_dir), "--model_name", "llm", rest=True)


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The task YAML files with the absolute path of their data."""
    folder = tmp_path_factory.mktemp("lm_eval_tasks")
    for task in TASKS.glob("*.yaml"):
        (folder / task.name).write_text(task.read_text().replace("DATA_DIR", str(TASKS)))
    return folder


def run_lm_eval(tmp_path: Path, tasks: Path, model: str, model_args: str, task: str, *extra: str) -> list[dict]:
    """Run the lm_eval CLI; returns the logged samples of ``task``."""
    output = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["HF_DATASETS_CACHE"] = str(tmp_path / "datasets")
    command = [sys.executable, "-m", "lm_eval", "--model", model, "--model_args", model_args, "--tasks", task,
               "--include_path", str(tasks), "--log_samples", "--output_path", str(output), *extra]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (samples,) = output.glob(f"*/samples_{task}_*.jsonl")
    return [json.loads(line) for line in samples.read_text().splitlines()]


@pytest.fixture(scope="module")
def pipeline(llm_dir: Path):
    return genai_reference.pipeline(llm_dir)


def scores_match_genai(samples: list[dict], llm_dir: Path, pipeline, tokenized: bool) -> int:
    """Check each loglikelihood score against in-process genai on the token ids the request meant;
    returns how many were compared. As text, the server tokenizes context + continuation together;
    as token ids (``tokenized``), lm_eval encoded context and continuation apart."""
    import openvino as ov
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(llm_dir))

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    compared = 0
    for sample in samples:
        for index, arguments in enumerate(sample["arguments"].values()):
            context, continuation = arguments["arg_0"], arguments["arg_1"]
            # lm_eval's pairing: the context's trailing spaces go to the continuation
            spaces = len(context) - len(context.rstrip())
            if spaces:
                context, continuation = context[:-spaces], context[-spaces:] + continuation
            context_ids = encode(context)
            whole = context_ids + encode(continuation) if tokenized else encode(context + continuation)
            logprobs = genai_reference.prompt_logprobs(pipeline, ov.Tensor(np.array([whole], dtype=np.int64)))
            expected = sum(logprobs[len(context_ids) - 1 :])  # logprobs[i] is token i + 1's
            got = float(sample["resps"][index][0][0])
            tolerance = genai_reference.SCORE_TOLERANCE
            assert got == pytest.approx(expected, rel=tolerance, abs=1e-3), (context, continuation)
            compared += 1
    return compared


@pytest.mark.parametrize("tokenized", [False, True], ids=["text", "token-ids"])
def test_loglikelihood_task_scores_like_in_process_genai(
    server: ServerProcess, tasks: Path, tmp_path: Path, llm_dir: Path, pipeline, tokenized: bool
) -> None:
    """Both of lm_eval's request forms: prompts as text, and as token ids (its default with a tokenizer)."""
    model_args = (
        f"model=llm,base_url={server.rest_url}/v3/completions,tokenizer={llm_dir},tokenizer_backend=huggingface,"
        f"tokenized_requests={tokenized},num_concurrent=2,max_retries=1"
    )
    samples = run_lm_eval(tmp_path, tasks, "local-completions", model_args, "tiny_mc")
    assert len(samples) == 6
    assert scores_match_genai(samples, llm_dir, pipeline, tokenized) == 18


def test_generation_task_answers_like_in_process_genai(
    server: ServerProcess, tasks: Path, tmp_path: Path, pipeline
) -> None:
    import openvino_genai as og

    model_args = f"model=llm,base_url={server.rest_url}/v3/chat/completions,num_concurrent=2,max_retries=1"
    samples = run_lm_eval(tmp_path, tasks, "local-chat-completions", model_args, "tiny_gen", "--apply_chat_template")
    assert len(samples) == 4
    tokenizer = pipeline.get_tokenizer()
    for sample in samples:
        (messages_json,) = sample["arguments"]["gen_args_0"]["arg_0"]
        prompt = tokenizer.apply_chat_template(json.loads(messages_json), add_generation_prompt=True)
        config = og.GenerationConfig()
        config.apply_chat_template = False
        config.max_new_tokens = 8
        config.stop_strings = {"\n\n"}
        ids, _ = genai_reference.run(pipeline, prompt, config)
        assert sample["resps"][0][0] == tokenizer.decode(ids)
