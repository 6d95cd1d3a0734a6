"""ACM configuration: one YAML file says which encoders, projectors, language model, data mix and
training settings a run uses. Validated with pydantic so a typo fails before any weights load.

A component is either `pretrained: <HF id or local path>` (real use) or `config: {model_type: ..., ...}`
(an inline transformers config, built with random weights: tests and `tiny.yaml`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..types import AnyCapError, InputError

KINDS = ("uncontrolled", "correct", "hallucinated")
CONFIG_DIR = Path(__file__).parent / "configs"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Component(_Strict):
    """A transformers model given by id/path or by an inline config."""

    pretrained: str | None = None
    config: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Component:
        if (self.pretrained is None) == (self.config is None):
            raise ValueError("give exactly one of `pretrained` (HF id or path) or `config` (inline, with model_type)")
        if self.config is not None and "model_type" not in self.config:
            raise ValueError("an inline `config` needs a `model_type` (e.g. siglip_vision_model, whisper, qwen2)")
        return self


class TokenizerSpec(_Strict):
    """`pretrained` loads a tokenizer; otherwise a byte-level BPE is trained on the training texts."""

    pretrained: str | None = None
    vocab_size: int = 1024
    train_texts: int = 4000  # how many samples' texts the BPE is trained on (speed)


class ModelConfig(_Strict):
    vision: Component | None = None  # images and video frames
    audio: Component | None = None  # a Whisper model; only its encoder is used
    lm: Component
    tokenizer: TokenizerSpec = Field(default_factory=TokenizerSpec)
    image_tokens: int = 16  # encoder outputs are average-pooled to this many tokens per image
    frame_tokens: int = 4  # ... per video frame
    video_frames: int = 8
    audio_tokens: int = 32
    projector_layers: int = 2  # Linear (GELU Linear)*(layers-1)
    image_size: int | None = None  # inline vision configs: taken from the config when absent
    freeze_encoders: bool = True


class DataConfig(_Strict):
    ratio: dict[str, float] = Field(default_factory=lambda: {"uncontrolled": 2.0, "correct": 2.0, "hallucinated": 1.0})
    num_samples: int | None = None  # None = as many as the scarcest kind allows at this ratio
    fill_correct_from_targets: bool = True  # make (q, c+, c+) by copying targets when that pool runs short
    include_direct: bool = True  # audio gpt_q_c lines (no existing caption) count as uncontrolled
    media: Literal["auto", "required", "none"] = "auto"
    media_dir: str | None = None
    eval_fraction: float = 0.0  # held out from the mix for Trainer evaluation
    seed: int = 20250724

    @model_validator(mode="after")
    def _ratio(self) -> DataConfig:
        unknown = set(self.ratio) - set(KINDS)
        if unknown:
            raise ValueError(f"ratio: unknown kinds {sorted(unknown)} (use {', '.join(KINDS)})")
        if any(v < 0 for v in self.ratio.values()) or sum(self.ratio.values()) <= 0:
            raise ValueError("ratio: weights must be >= 0 and not all zero")
        return self


class TrainConfig(_Strict):
    """docs/design.md "ACM training defaults" (paper App. Table 16); the learning rate is not in the paper text."""

    epochs: float = 3
    learning_rate: float = 1e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.03
    lr_scheduler: str = "cosine"
    per_device_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    max_length: int = 4096
    bf16: Literal["auto", "true", "false"] = "auto"  # auto = when the device supports it
    gradient_checkpointing: bool = True
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int | None = 3
    seed: int = 42
    dataloader_workers: int = 0
    deepspeed: str | None = None  # path to a DeepSpeed JSON (e.g. configs/deepspeed_zero2.json)
    fsdp: str | None = None  # transformers `fsdp` string, e.g. "full_shard auto_wrap"
    report_to: list[str] = Field(default_factory=list)


class GenerateConfig(_Strict):
    max_new_tokens: int = 512
    batch_size: int = 8


class ACMConfig(_Strict):
    name: str = "acm"
    model: ModelConfig
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    generate: GenerateConfig = Field(default_factory=GenerateConfig)


def load_config(path: str | Path) -> ACMConfig:
    """A YAML file, or the name of a shipped config (`tiny`, `base_0p5b`)."""
    p = Path(path)
    if not p.is_file() and (CONFIG_DIR / f"{path}.yaml").is_file():
        p = CONFIG_DIR / f"{path}.yaml"
    if not p.is_file():
        raise AnyCapError(f"ACM config {path} not found (a YAML file, or one of: "
                          f"{', '.join(sorted(f.stem for f in CONFIG_DIR.glob('*.yaml')))})")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise AnyCapError(f"{p}: not valid YAML: {exc}") from exc
    return parse_config(raw, str(p))


def parse_config(raw: Any, where: str) -> ACMConfig:
    try:
        return ACMConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(x) for x in first["loc"]) or "(root)"
        raise InputError(where, field, f"{first['msg']} ({len(exc.errors())} problem(s) in all)") from exc
