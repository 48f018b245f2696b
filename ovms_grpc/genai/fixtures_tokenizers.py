"""Tokenizers for the generative fixtures: trained offline, converted to OpenVINO without ``transformers``.

Two tokenizers are made with the ``tokenizers`` package from a small synthetic corpus (no download):

- a byte-level BPE with Qwen2's split regex and ChatML special tokens, trained, for the LLM;
- a lower-casing WordPiece (vocabulary listed from the corpus) with ``[CLS] $A [SEP]`` and
  ``[CLS] $A [SEP] $B:1 [SEP]:1`` templates, for the embedding and cross-encoder rerank models (the pair
  template is what ``TextRerankPipeline`` needs).

They are converted into ``openvino_tokenizer.xml`` / ``openvino_detokenizer.xml`` with the pipeline steps of
``openvino_tokenizers`` directly, the same steps its ``convert_tokenizer`` picks for these two tokenizer kinds,
so ``transformers`` is not needed. The result honours ``max_length``, ``truncation``, ``padding_side`` and
``add_special_tokens`` at run time, and the WordPiece one accepts ``add_second_input=True``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openvino as ov
from openvino_tokenizers import tokenizer_pipeline as steps
from openvino_tokenizers.constants import UTF8ReplaceMode
from openvino_tokenizers.utils import (
    change_inputs_type,
    change_outputs_type,
    parse_template_processing,
    update_rt_info_with_environment,
)
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from ovms_grpc.genai.fixtures_ir import save_model

#: Qwen2's pre-tokenizer regex; genai's GGUF reader uses the same one for ``tokenizer.ggml.pre = "qwen2"``.
QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

BOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|endoftext|>"
EOS_TOKEN = "<|im_end|>"
CHATML_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

#: ChatML (Qwen2.5-style, reduced): a system turn, tools listed in the system turn as JSON inside
#: ``<tools>``, assistant tool calls as ``<tool_call>`` JSON, tool results as ``<tool_response>`` user turns.
#: Written for both genai's minja and jinja2 (``tojson``, ``is string``, ``loop.first`` and ``is defined`` only).
CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": '
    "<args-json-object>}\\n</tool_call><|im_end|>\\n' }}"
    "{%- elif messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' and loop.first %}"
    "{%- elif message['role'] == 'tool' %}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message['content'] + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- elif message['role'] == 'assistant' and message['tool_calls'] is defined and message['tool_calls'] %}"
    "{{- '<|im_start|>assistant' }}"
    "{%- if message['content'] %}{{- '\\n' + message['content'] }}{%- endif %}"
    "{%- for tool_call in message['tool_calls'] %}"
    "{%- if tool_call['function'] is defined %}{%- set tool_call = tool_call['function'] %}{%- endif %}"
    "{{- '\\n<tool_call>\\n{\"name\": \"' + tool_call['name'] + '\", \"arguments\": ' }}"
    "{%- if tool_call['arguments'] is string %}{{- tool_call['arguments'] }}"
    "{%- else %}{{- tool_call['arguments'] | tojson }}{%- endif %}"
    "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

_WORDS = (
    "the quick brown fox jumps over the lazy dog . hello world ! openvino genai model server test fixture tiny "
    "random weights token tokenizer detokenizer chat template assistant user system tool call function message "
    "content answer question what is why how when where who which one two three four five six seven eight nine "
    "ten zero 0 1 2 3 4 5 6 7 8 9 , ; : ? ( ) [ ] { } \" ' - _ + = < > / * # @ embedding rerank query document "
    "passage score cat dog bird fish red green blue yellow apple banana yes no code python json http api stream "
    "streaming request response generate generation weather city paris london sunny rain today name arguments"
).split()


def training_corpus(lines: int = 400) -> list[str]:
    """A deterministic synthetic corpus: word sequences, capitalised variants, and bare ``yes`` / ``no``."""
    words = _WORDS
    corpus = []
    for i in range(lines):
        length = 6 + (i * 7) % 11
        corpus.append(" ".join(words[(i * 13 + j * 31) % len(words)] for j in range(length)))
        corpus.append(" ".join(words[(i * 5 + j * 3) % len(words)].capitalize() for j in range(length // 2)))
    # genai's LLM rerank path (config.json model_type "qwen3") looks up the bare tokens "yes" and "no"
    corpus += ["yes", "no"] * 20
    return corpus


def train_byte_level_bpe(vocab_size: int = 1000) -> Tokenizer:
    """Byte-level BPE as Qwen2's; on this corpus the trainer stops below ``vocab_size`` (about 800 tokens)."""
    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(CHATML_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_corpus(), trainer=trainer)
    return tokenizer


def build_wordpiece() -> Tokenizer:
    """BERT-style uncased WordPiece with single and pair templates.

    The vocabulary is made directly (special tokens, every character alone and as a ``##`` continuation, every
    corpus word) rather than trained: the WordPiece trainer numbers ``##`` pieces in hash-map order, so its
    vocabulary changes from run to run. Unknown words split into characters, so nothing maps to ``[UNK]`` but
    characters outside the corpus.
    """
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = sorted(
        {
            piece
            for line in training_corpus()
            for piece, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line))
        }
    )
    chars = sorted({char for word in words for char in word})
    tokens = dict.fromkeys([*BERT_SPECIAL_TOKENS, *chars, *(f"##{char}" for char in chars), *words])
    tokenizer = Tokenizer(models.WordPiece({token: index for index, token in enumerate(tokens)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.add_special_tokens(list(BERT_SPECIAL_TOKENS))
    cls_id, sep_id = token_id(tokenizer, "[CLS]"), token_id(tokenizer, "[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tokenizer


def token_id(tokenizer: Tokenizer, token: str) -> int:
    """The id of a token that must be in the vocabulary."""
    index = tokenizer.token_to_id(token)
    if index is None:
        raise ValueError(f"token {token!r} is not in the vocabulary")
    return index


def vocabulary(tokenizer: Tokenizer) -> list[str]:
    """Tokens indexed by id (byte-level BPE tokens in their printable GPT-2 form), special tokens included."""
    by_id = {index: token for token, index in tokenizer.get_vocab(with_added_tokens=True).items()}
    tokens = [by_id[index] for index in range(len(by_id))]
    return tokens


def merges(tokenizer: Tokenizer) -> list[str]:
    """BPE merges as ``"left right"`` strings."""
    raw = json.loads(tokenizer.to_str())["model"]["merges"]
    return [merge if isinstance(merge, str) else " ".join(merge) for merge in raw]


@dataclass(frozen=True)
class TokenizerSpec:
    """What the converted tokenizer needs besides the trained ``tokenizers.Tokenizer``."""

    special_tokens: Sequence[str]
    """Tokens split out of the text before pre-tokenization and skipped when decoding."""
    pad_token: str
    """Padding token (also written as ``pad_token_id``)."""
    model_max_length: int
    """Length truncation cuts to when a caller asks for truncation without ``max_length``."""
    bos_token: str | None = None
    """Written as ``bos_token_id``; the tokenizer does not add it (no ChatML model does)."""
    eos_token: str | None = None
    """Written as ``eos_token_id``: the token generation stops at."""
    chat_template: str | None = None
    """Jinja chat template stored in the tokenizer's rt_info and in ``tokenizer_config.json``."""
    token_type_ids: bool = False
    """Whether the tokenizer has a ``token_type_ids`` output (BERT) or only ids and mask (LLM)."""


def convert(tokenizer: Tokenizer, spec: TokenizerSpec) -> tuple[ov.Model, ov.Model]:
    """Tokenizer and detokenizer models for a BPE (byte-level, split regex) or WordPiece (BERT) tokenizer."""
    data: dict[str, Any] = json.loads(tokenizer.to_str())
    kind = data["model"]["type"]
    pipeline = steps.TokenizerPipeline()
    pipeline.add_steps(steps.SpecialTokensSplit([steps.SpecialToken(token) for token in spec.special_tokens]))
    if kind == "WordPiece":
        # BertNormalizer(clean_text, handle_chinese_chars, lowercase) and BertPreTokenizer
        pipeline.add_steps(
            [
                steps.RegexNormalizationStep.del_control_chars_regex(),
                steps.RegexNormalizationStep.replace_whitespace_regex(),
                steps.RegexNormalizationStep.handle_chinese_chars_regex(),
                steps.NormalizeUnicode("NFD"),
                steps.RegexNormalizationStep.strip_accents_regex(),
                steps.CaseFoldStep(),
            ]
        )
        pipeline.add_steps(steps.RegexSplitStep.bert_splitter())
        pipeline.add_steps(steps.WordPieceTokenizationStep.from_hf_json(data))
    elif kind == "BPE":
        split = data["pre_tokenizer"]["pretokenizers"][0]
        pipeline.add_steps(
            steps.RegexSplitStep(split_pattern=split["pattern"]["Regex"], invert=False, behaviour="isolate")
        )
        pipeline.add_steps(steps.BytesToCharsStep())
        pipeline.add_steps(steps.BPETokenizationStep.from_hf_json(data))
    else:
        raise ValueError(f"tokenizer model {kind!r} is not supported (expected BPE or WordPiece)")
    pipeline.vocab = pipeline[-1].vocab

    template = data["post_processor"]
    if template is not None:
        combine = steps.CombineSegmentsStep.from_hf_json_template_postprocessor(template, 1, True)
    else:
        combine = steps.CombineSegmentsStep([steps.Sequence()], add_special_tokens=True)
    # truncation is off unless asked for; when on, the added special tokens fit inside model_max_length
    pipeline.add_steps(steps.TruncationStep(max_length=spec.model_max_length - combine.number_of_added_tokens))
    pipeline.add_steps(combine)
    pipeline.add_steps(
        steps.PaddingStep(
            token=spec.pad_token, _token_id=token_id(tokenizer, spec.pad_token), max_length=spec.model_max_length
        )
    )

    special_ids = {token_id(tokenizer, token): token for token in spec.special_tokens}
    pipeline.add_steps(
        steps.VocabDecoderStep.from_hf_json(
            data,
            pipeline.vocab,
            added_tokens=special_ids,
            skip_tokens=sorted(special_ids),
            is_byte_level=pipeline.is_byte_level,
        )
    )
    if kind == "WordPiece":
        pipeline.add_steps(
            [
                steps.FuseStep(),
                steps.RegexDecodingStep.strip_forward_space(),
                steps.RegexDecodingStep.replace_continuing_subword_prefix(prefix="##"),
            ]
        )
    else:
        pipeline.add_steps(steps.CharsToBytesStep())
    pipeline.add_steps(steps.UTF8ValidateStep(mode=UTF8ReplaceMode.REPLACE))

    raw_tokenizer = pipeline.get_tokenizer_ov_subgraph()
    outputs = [
        output for output in raw_tokenizer.outputs if spec.token_type_ids or "token_type_ids" not in output.names
    ]
    ov_tokenizer = ov.Model(outputs, raw_tokenizer.get_parameters(), "tokenizer")
    ov_tokenizer.add_sinks(raw_tokenizer.get_sinks())  # the truncation switch is a ReadValue/Assign pair
    ov_tokenizer = change_outputs_type(ov_tokenizer, ov.Type.i64)
    ov_detokenizer = change_inputs_type(pipeline.get_detokenizer_ov_subgraph(), ov.Type.i64)

    for model in (ov_tokenizer, ov_detokenizer):
        model.set_rt_info(token_id(tokenizer, spec.pad_token), "pad_token_id")
        if spec.bos_token is not None:
            model.set_rt_info(token_id(tokenizer, spec.bos_token), "bos_token_id")
        if spec.eos_token is not None:
            model.set_rt_info(token_id(tokenizer, spec.eos_token), "eos_token_id")
        if spec.chat_template is not None:
            model.set_rt_info(spec.chat_template, "chat_template")
        update_rt_info_with_environment(model)
    if template is not None:
        # genai's AddSecondInputPass (add_second_input=True) reads the pair template from here
        ov_tokenizer.set_rt_info(json.dumps(template), "original_post_processor_template")
        ov_tokenizer.set_rt_info(
            json.dumps(parse_template_processing(template, _VocabView(tokenizer))), "processed_post_processor_template"
        )
    return ov_tokenizer, ov_detokenizer


class _VocabView:
    """The one method ``parse_template_processing`` calls on a Hugging Face tokenizer."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer = tokenizer

    def get_vocab(self) -> dict[str, int]:
        return self._tokenizer.get_vocab(with_added_tokens=True)


def write_tokenizer(tokenizer: Tokenizer, spec: TokenizerSpec, folder: Path, **config: Any) -> None:
    """Write the OpenVINO tokenizer/detokenizer plus ``tokenizer.json`` and ``tokenizer_config.json``.

    The last two let Hugging Face tools (``AutoTokenizer``, lm-evaluation-harness) load the same tokenizer;
    ``config`` adds keys to ``tokenizer_config.json``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ov_tokenizer, ov_detokenizer = convert(tokenizer, spec)
    save_model(ov_tokenizer, folder / "openvino_tokenizer.xml", "tokenizer")
    save_model(ov_detokenizer, folder / "openvino_detokenizer.xml", "detokenizer")
    tokenizer.save(str(folder / "tokenizer.json"))
    added = {
        str(token_id(tokenizer, token)): {
            "content": token,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for token in spec.special_tokens
    }
    tokenizer_config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": spec.model_max_length,
        "pad_token": spec.pad_token,
        "bos_token": spec.bos_token,
        "eos_token": spec.eos_token,
        "clean_up_tokenization_spaces": False,
        "added_tokens_decoder": added,
        **config,
    }
    if spec.chat_template is not None:
        tokenizer_config["chat_template"] = spec.chat_template
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=1) + "\n")
