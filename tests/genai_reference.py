"""In-process openvino_genai, the reference that served generation is compared with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Relative tolerance for log probabilities compared with this reference. A server with prefix
#: caching scores prompts with one forward pass of the plain IR (SDPA attention), the reference
#: with the paged-attention pipeline; on AVX2-only CPUs the two kernels accumulate differently in
#: the fourth significant digit (seen: -8.1568 vs -8.1597). A misaligned token would differ by units.
SCORE_TOLERANCE = 1e-3


def pipeline(model: Path) -> Any:
    """A ContinuousBatchingPipeline without prefix caching (its echo logprobs are then complete)."""
    import openvino_genai as og

    scheduler = og.SchedulerConfig()
    scheduler.cache_size = 1
    scheduler.enable_prefix_caching = False
    return og.ContinuousBatchingPipeline(str(model), scheduler, "CPU")


def run(pipe: Any, prompt: Any, config: Any) -> tuple[list[int], list[float]]:
    """One request to completion: its output token ids and their logprobs (with ``echo``, the prompt's first)."""
    handle = pipe.add_request(1, prompt, config)
    ids: list[int] = []
    logprobs: list[float] = []
    while pipe.has_non_finished_requests():
        pipe.step()
        if handle.can_read():
            for output in handle.read().values():
                ids += list(output.generated_ids)
                logprobs += list(output.generated_log_probs)
    return ids, logprobs


def prompt_logprobs(pipe: Any, prompt: Any) -> list[float]:
    """Logprobs of the prompt's tokens after the first (nothing predicts the first): genai's echo."""
    import openvino_genai as og

    config = og.GenerationConfig()
    config.apply_chat_template = False
    config.echo, config.logprobs, config.max_new_tokens = True, 1, 0
    return run(pipe, prompt, config)[1][1:]
