"""Training ACM with the Hugging Face Trainer, so one code path runs on a laptop CPU, one GPU,
`torchrun` / `accelerate launch` multi-GPU, DeepSpeed ZeRO or FSDP.

Checkpoints are ordinary Trainer checkpoints (`checkpoint-N/` with `trainer_state.json`, optimizer,
scheduler and RNG state) whose model files are an ACM checkpoint (`acm_config.json`,
`model.safetensors`, tokenizer, processors): any of them can be refined with or resumed from.
"""

from __future__ import annotations

import inspect
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store import write_json_atomic
from .config import ACMConfig
from .data import mix, read_triplets, resolve_media

log = logging.getLogger("anycapeval.acm")
DATA_REPORT = "acm_data.json"


@dataclass
class TrainResult:
    output: Path
    steps: int
    losses: list[tuple[int, float]]  # (step, logged training loss)
    samples: int
    text_only: bool
    train_runtime_s: float
    tokens_seen: int


def build_tokenizer(config: ACMConfig, texts: list[str]) -> Any:
    from transformers import AutoTokenizer

    from .text import add_acm_tokens, train_bpe

    spec = config.model.tokenizer
    if spec.pretrained or config.model.lm.pretrained:
        return add_acm_tokens(AutoTokenizer.from_pretrained(spec.pretrained or config.model.lm.pretrained))
    return train_bpe(texts, spec.vocab_size)


def training_arguments(config: ACMConfig, output: Path, max_steps: int | None, use_bf16: bool) -> Any:
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    t = config.train
    kwargs: dict[str, Any] = dict(
        output_dir=str(output), num_train_epochs=t.epochs, max_steps=max_steps or -1,
        learning_rate=t.learning_rate, weight_decay=t.weight_decay, lr_scheduler_type=t.lr_scheduler,
        per_device_train_batch_size=t.per_device_batch_size, gradient_accumulation_steps=t.gradient_accumulation_steps,
        bf16=use_bf16, logging_steps=t.logging_steps, dataloader_pin_memory=use_bf16 or cuda,
        logging_first_step=True, save_steps=t.save_steps, save_total_limit=t.save_total_limit, seed=t.seed,
        dataloader_num_workers=t.dataloader_workers, remove_unused_columns=False, report_to=t.report_to or "none",
        deepspeed=t.deepspeed, fsdp=t.fsdp or "", include_num_input_tokens_seen=True, disable_tqdm=True,
        label_names=["labels"])
    # transformers 5 folded warmup_ratio into warmup_steps (a float below 1 is a ratio) and renamed
    # gradient_checkpointing to activation_checkpointing
    params = inspect.signature(TrainingArguments.__init__).parameters
    kwargs["warmup_ratio" if "warmup_ratio" in params else "warmup_steps"] = t.warmup_ratio
    kwargs["activation_checkpointing" if "activation_checkpointing" in params else "gradient_checkpointing"] = \
        t.gradient_checkpointing
    return TrainingArguments(**kwargs)


def _trainer_class() -> Any:
    from transformers import Trainer

    class ACMTrainer(Trainer):  # type: ignore[misc]
        """Writes every checkpoint as a loadable ACM checkpoint (the base Trainer would save a bare
        state dict for a model that is not a PreTrainedModel)."""

        acm_extra: dict[str, Any] = {}
        acm_processor: Any = None

        def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
            out = Path(output_dir or str(self.args.output_dir))
            if not self.args.should_save:
                return
            model = self.accelerator.unwrap_model(self.model)
            model.save_pretrained(out, state_dict=state_dict, processor=self.acm_processor, extra=self.acm_extra)
            if self.processing_class is not None:
                self.processing_class.save_pretrained(str(out))

    return ACMTrainer


def _progress_callback() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from transformers import TrainerCallback

    from ..cli import console

    class RichProgress(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("{task.fields[loss]}"), console=console)
            self.bar = self.progress.add_task("train ACM", total=state.max_steps, completed=state.global_step, loss="")
            self.progress.start()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.progress.update(self.bar, completed=state.global_step)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if logs and "loss" in logs:
                self.progress.update(self.bar, loss=f"loss {logs['loss']:.3f}")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.progress.stop()

    return RichProgress()


def train(config: ACMConfig, data: str | Path, output: str | Path, max_steps: int | None = None,
          resume: bool = False, progress: bool = True) -> TrainResult:
    """Read and mix the data, build (or resume) the model, train, save the final checkpoint in `output`."""
    import torch
    from transformers.trainer_utils import get_last_checkpoint

    from .data import ACMDataset, Collator
    from .model import ACMModel

    out = Path(output)
    triplets, report = read_triplets(data, config.data.include_direct)
    mixed, report.mixed = mix(triplets, config.data)
    n_eval = int(len(mixed) * config.data.eval_fraction)
    train_set, eval_set = mixed[n_eval:], mixed[:n_eval]
    texts = [s for t in train_set[:config.model.tokenizer.train_texts] for s in (t.instruction, t.draft, t.target)]
    tokenizer = build_tokenizer(config, texts)
    model = ACMModel.build(config, tokenizer)
    processor = model.media_processor()
    has_encoder = {m: m in model.projectors for m in ("image", "video", "audio")}
    train_samples, report.media = resolve_media(train_set, config.data, has_encoder)
    eval_samples = resolve_media(eval_set, config.data, has_encoder)[0] if eval_set else []

    use_bf16 = config.train.bf16 == "true" or (config.train.bf16 == "auto" and torch.cuda.is_available()
                                               and torch.cuda.is_bf16_supported())
    args = training_arguments(config, out, max_steps, use_bf16)
    make = lambda samples: ACMDataset(samples, tokenizer, processor, model.tokens_per_item,  # noqa: E731
                                      config.train.max_length)
    trainer = _trainer_class()(
        model=model, args=args, train_dataset=make(train_samples),
        eval_dataset=make(eval_samples) if eval_samples else None,
        data_collator=Collator(tokenizer.pad_token_id), processing_class=tokenizer,
        callbacks=[_progress_callback()] if progress else None)
    extra = {"data": {**report.as_dict(), "source": str(data)}, "bf16": use_bf16}
    trainer.acm_extra, trainer.acm_processor = extra, processor
    if args.should_save:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / DATA_REPORT, extra["data"])
        (out / "acm_run_config.json").write_text(json.dumps(config.model_dump(mode="json"), indent=1), encoding="utf-8")

    checkpoint = None
    if resume:
        checkpoint = get_last_checkpoint(str(out))
        if checkpoint is None:
            log.warning("--resume: no checkpoint-N/ in %s, starting from scratch", out)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(str(out))
    trainer.save_state()
    if eval_samples:
        trainer.evaluate()
    losses = [(int(e["step"]), float(e["loss"])) for e in trainer.state.log_history if "loss" in e]
    return TrainResult(out, trainer.state.global_step, losses, len(train_samples), bool(report.media["text_only"]),
                       float(result.metrics.get("train_runtime", 0.0)),
                       int(getattr(trainer.state, "num_input_tokens_seen", 0) or 0))
