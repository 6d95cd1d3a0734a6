"""Refinement with a trained ACM checkpoint: (instruction, draft caption, media) -> refined caption.

Batched greedy decoding with left padding. Media is used when the file is there and the checkpoint
has an encoder for it; otherwise the item is refined text-only and counted (`text_only`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..distributed import local_device
from ..media import MediaError
from ..types import AnyCapError

log = logging.getLogger("anycapeval.acm")


@dataclass(frozen=True)
class RefineRequest:
    instruction: str
    draft: str
    modality: str | None = None
    media_path: Path | None = None


class Refiner:
    """A loaded checkpoint. `device`/`dtype` as torch names ('cuda', 'bfloat16') or 'auto' (default):
    the GPU when there is one; bfloat16 on GPU, float32 on CPU."""

    def __init__(self, checkpoint: str | Path, device: str | None = None, dtype: str | None = None,
                 batch_size: int | None = None, max_new_tokens: int | None = None):
        import torch

        from .model import CONFIG_FILE, ACMModel

        path = Path(checkpoint)
        if not (path / CONFIG_FILE).is_file():
            raise AnyCapError(f"{path} is not an ACM checkpoint (no {CONFIG_FILE}; see `anycapeval acm train`)")
        self.model, self.tokenizer, self.processor = ACMModel.from_pretrained(path)
        self.device = torch.device(local_device(device))  # under torchrun / accelerate launch: cuda:LOCAL_RANK
        default_dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        torch_dtype = getattr(torch, default_dtype if dtype in (None, "auto") else str(dtype), None)
        if not isinstance(torch_dtype, torch.dtype):
            raise AnyCapError(f"unknown dtype {dtype!r} (e.g. float32, bfloat16, float16)")
        self.model.to(device=self.device, dtype=torch_dtype).eval()
        gen = self.model.acm_config.generate
        self.batch_size = batch_size or gen.batch_size
        self.max_new_tokens = max_new_tokens or gen.max_new_tokens
        self.max_length = self.model.acm_config.train.max_length
        self.text_only = 0  # requests refined without their media

    def _row(self, request: RefineRequest) -> tuple[list[int], str | None, Any]:
        from .features import load_media
        from .text import encode

        modality = request.modality if request.media_path is not None and request.modality is not None \
            and request.modality in self.model.projectors else None
        if request.media_path is not None and modality is None:
            self.text_only += 1
        tensor = load_media(modality, request.media_path, self.processor) if modality and request.media_path else None
        n_media = self.model.tokens_per_item[modality] if modality else 0
        room = self.max_length - self.max_new_tokens
        enc = encode(self.tokenizer, request.instruction, request.draft, n_media, modality, None, max(room, 64))
        return enc.input_ids, modality, tensor

    def refine(self, requests: list[RefineRequest]) -> list[str | MediaError]:
        """One refined caption per request, or the MediaError that kept that request from running."""
        out: list[str | MediaError] = []
        for start in range(0, len(requests), self.batch_size):
            out += self._refine_batch(requests[start:start + self.batch_size])
        return out

    def _refine_batch(self, requests: list[RefineRequest]) -> list[str | MediaError]:
        import torch

        rows: list[tuple[list[int], str | None, Any]] = []
        results: list[str | MediaError | None] = []
        for request in requests:
            try:
                rows.append(self._row(request))
                results.append(None)
            except MediaError as exc:
                results.append(exc)
        if rows:
            width = max(len(ids) for ids, _, _ in rows)
            pad = self.tokenizer.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids, _, _ in rows], device=self.device)
            mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids, _, _ in rows], device=self.device)
            dtype = next(self.model.lm.parameters()).dtype
            media = {}
            for modality in ("image", "video", "audio"):
                tensors = [t for _, m, t in rows if m == modality]
                if tensors:
                    media[modality] = torch.stack(tensors).to(self.device, dtype)
            new = self.model.generate(input_ids, mask, self.max_new_tokens, self.tokenizer.eos_token_id, pad, **media)
            captions = iter(self.tokenizer.decode(seq, skip_special_tokens=True).strip() for seq in new)
            results = [next(captions) if r is None else r for r in results]
        return [r for r in results if r is not None]


def parse_model_args(args: dict[str, str]) -> dict[str, Any]:
    """`--model-args device=cuda,dtype=bfloat16,batch_size=16,max_new_tokens=256` -> Refiner kwargs."""
    known = {"device": str, "dtype": str, "batch_size": int, "max_new_tokens": int}
    out: dict[str, Any] = {}
    for key, value in args.items():
        if key not in known:
            raise AnyCapError(f"unknown ACM model arg {key!r} (known: {', '.join(known)})")
        try:
            out[key] = known[key](value)
        except ValueError as exc:
            raise AnyCapError(f"ACM model arg {key}={value!r}: expected {known[key].__name__}") from exc
    return out
