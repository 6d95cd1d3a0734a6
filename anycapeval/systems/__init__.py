"""Systems under test, built from a spec string: each is a `SystemBase` (systems/base.py), whose
`async generate(item) -> Prediction` writes one caption. `KINDS` lists the kinds and their
`--model-args`; `anycapeval systems` prints it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..chat import SECRET_ARG
from ..types import AnyCapError, Item, Prediction
from .base import SystemBase


class ReferenceSystem(SystemBase):
    """The item's own reference caption: the oracle row of a leaderboard."""

    spec = "reference"
    cacheable = False
    needs_media = False

    async def generate(self, item: Item) -> Prediction:
        return Prediction(item.task, item.id, self.spec, item.reference)


OPENAI_ARGS = {
    "base_url": "server URL (default api.openai.com; a local server needs no key)",
    "key_file": "file holding the API key (default $OPENAI_API_KEY)",
    "media": "auto (send the item's media) or never (the instruction alone: a blind text-only captioner)",
    "max_tokens": "longest caption in tokens (512; reasoning models get at least 4096, reasoning included)",
    "temperature": "sampling temperature (0; not sent to reasoning models)",
    "seed": "sampling seed sent to the server (1234; 'none' to omit)",
    "reasoning_effort": "for reasoning models (o1, o3, o4-mini, gpt-5...): minimal, low, medium, high",
    "family": "chat, reasoning or audio, when the model name does not tell (e.g. an Azure deployment)",
    "frames": "video frames sent per clip (8)",
    "max_side": "longest image/frame side in pixels (1024)",
    "concurrency": "requests in flight at most (--generation-concurrency); narrows itself on rate limits",
    "max_attempts": "tries per item before generation_error (5)",
    "timeout_s": "seconds per request (120)",
    "retry_base_s": "first backoff delay, doubled each retry (0.5)",
}


@dataclass(frozen=True)
class SystemKind:
    name: str
    syntax: str
    summary: str
    args: dict[str, str]  # --model-args key -> what it does (default)


KINDS = (
    SystemKind("reference", "reference", "the reference caption itself (oracle row)", {}),
    SystemKind("predictions", "predictions:<file>", "captions you already have; the format is detected per file "
               "(this project's JSONL, AnyCap generation files, lm-eval / lmms-eval --log_samples, MIA-Bench, "
               "VidCapBench, AnyCap audio captioning)", {}),
    SystemKind("openai", "openai:<model>", "any OpenAI-compatible chat server (OpenAI, vLLM, SGLang, Ollama, "
               "llama.cpp, Azure's v1 endpoint); images as data URLs, video as frames with timestamps, audio as "
               "input_audio; any other key=value is sent to the server as is (extra_body)",
               {**OPENAI_ARGS, "batch": "true: captions through the OpenAI Batch API at its price, polled until done; "
                "a killed run re-run polls the same batches (false)",
                "batch_retry": "batch lines that failed: asked again online, or in follow-up batches (online)"}),
    SystemKind("azure", "azure:<deployment>", "a deployment on an Azure OpenAI classic endpoint "
               "(/openai/deployments/...; key from $AZURE_OPENAI_API_KEY or key_file)",
               {**OPENAI_ARGS, "base_url": "the resource endpoint, https://RESOURCE.openai.azure.com (required)",
                "api_version": "Azure API version, e.g. 2024-10-21 (or $OPENAI_API_VERSION)"}),
    SystemKind("hf", "hf:<path or hub id>", "a local transformers model: AutoProcessor + "
               "AutoModelForImageTextToText (image/video) or AutoModelForMultimodalLM (audio-capable), "
               "batched greedy decoding", {
                   "device": "cpu, cuda, cuda:1, mps or auto (auto: cuda when available)",
                   "dtype": "auto, float32, bfloat16 or float16 (auto: bfloat16 on cuda, float32 on cpu)",
                   "batch_size": "items per generate call (4)",
                   "max_new_tokens": "longest caption in tokens (256)",
                   "frames": "video frames per clip (8)",
                   "max_side": "longest image/frame side in pixels (none: the processor decides)",
                   "video": "auto (native video input when the processor has one), frames (always as images)",
                   "attn_implementation": "passed to from_pretrained (e.g. sdpa, flash_attention_2)",
               }),
    SystemKind("acm", "acm:<checkpoint>", "an ACM refiner over a base system (needs --base SYSTEM; "
               "--base-args for the base's own arguments)", {
                   "device": "cpu, cuda, cuda:1 or auto (auto: cuda when available)",
                   "dtype": "auto, float32, bfloat16 or float16",
                   "batch_size": "captions refined per generate call (8)",
                   "max_new_tokens": "longest refined caption in tokens",
               }),
)


def parse_model_args(values: list[str] | str | None) -> dict[str, str]:
    """'k=v,k2=v2' (repeatable) -> dict. Secrets are refused: keys come from the environment or a key file."""
    out: dict[str, str] = {}
    for value in [values] if isinstance(values, str) else values or []:
        for pair in filter(None, (p.strip() for p in value.split(","))):
            key, sep, val = pair.partition("=")
            if not sep or not key.strip():
                raise AnyCapError(f"--model-args: '{pair}' is not key=value")
            key = key.strip()
            if SECRET_ARG.search(key):
                raise AnyCapError(f"--model-args: '{key}' looks like a secret; put the key in $OPENAI_API_KEY or "
                                  "in a file named by key_file=FILE (secrets are never written to run files)")
            out[key] = val.strip()
    return out


def check_args(kind: str, args: dict[str, str]) -> None:
    known = next(k.args for k in KINDS if k.name == kind)
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise AnyCapError(f"{kind}: unknown --model-args {', '.join(unknown)} (known: {', '.join(known) or 'none'})")


def make_system(spec: str, items: Iterable[Item], all_ids: dict[str, set[str]], *,
                model_args: dict[str, str] | None = None, base: str | None = None,
                base_args: dict[str, str] | None = None,
                concurrency: int = 8) -> SystemBase:
    """The system for `spec`. `items` are every selected item (for matching imported captions),
    `all_ids` each task's ids; `concurrency` is the default for systems with requests in flight."""
    kind, _, arg = spec.partition(":")
    args = dict(model_args or {})
    if base is not None and kind != "acm":
        raise AnyCapError(f"--base is only for acm:<checkpoint> systems, not '{spec}'")
    if kind == "acm":
        if not arg:
            raise AnyCapError("acm:<checkpoint> needs the checkpoint folder, e.g. acm:runs/acm-2b")
        if not base:
            raise AnyCapError(f"{spec} refines another system's captions: pass --base SYSTEM "
                              "(e.g. --base openai:gpt-4o-2024-08-06 or --base hf:Qwen/Qwen2.5-VL-7B-Instruct)")
        if base.startswith("acm:"):
            raise AnyCapError("--base cannot itself be an acm: system")
        base_system = make_system(base, items, all_ids, model_args=base_args, concurrency=concurrency)
        from ..acm.system import ACMSystem

        return ACMSystem(arg, base_system, args)
    if base_args:
        raise AnyCapError("--base-args is only for acm:<checkpoint> systems")
    if kind in ("reference", "predictions"):
        check_args(kind, args)
    if kind == "reference" and not arg:
        return ReferenceSystem()
    if kind == "predictions" and arg:
        from .predictions import PredictionsSystem

        return PredictionsSystem(arg, items, all_ids)
    if kind in ("openai", "azure") and arg:  # unknown keys are passed through to the server
        from .openai_system import OpenAISystem

        return OpenAISystem(arg, args, default_concurrency=concurrency, kind=kind)
    if kind == "hf" and arg:
        from .hf_system import HFSystem

        check_args(kind, args)
        return HFSystem(arg, args)
    known = ", ".join(k.syntax for k in KINDS)
    raise AnyCapError(f"unknown system '{spec}': use one of {known} (see `anycapeval systems`)")
