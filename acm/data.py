"""ACM training data: read ACD (the released AnyCapDataset files) or our own triplet JSONL, mix the
three sample kinds at a ratio, and turn samples into token ids + media tensors for the Trainer.

ACD folder -> kind (see shared/data/README.md, section acd/): `q-8b-c`, `q_c_a_org` uncontrolled draft;
`gpt_q_c` no draft at all (direct generation; the paper counts it with the uncontrolled kind);
`q-c-c` already correct (draft == target); `q-a-c`, `q_c_a` hallucinated draft.

Our triplet JSONL, one object per line:
  {"instruction": str, "draft": str, "target": str, "kind": "uncontrolled"|"correct"|"hallucinated",
   "modality": "image"|"video"|"audio" (optional), "media": file name or path (optional), "id": any (optional)}
"""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..files import read_jsonl
from ..types import AnyCapError, InputError
from .config import KINDS, DataConfig

log = logging.getLogger("anycapeval.acm")

FOLDER_KINDS = {"q-8b-c": "uncontrolled", "q_c_a_org": "uncontrolled", "gpt_q_c": "uncontrolled",
                "q-c-c": "correct", "q-a-c": "hallucinated", "q_c_a": "hallucinated"}
MODALITIES = ("image", "video", "audio")
REQUIREMENT, EXISTING, CLOSING = "The requirement is:", "The existing caption is:", "You only need to answer"
MEDIA_TAG = re.compile(r"^\s*(?:<(?:image|video|audio)>\s*)+")
# prompt-template leftovers in the released files, e.g. "[Your slightly inferior description ...]"
PLACEHOLDER = re.compile(r"\[(?:Your|Insert|Provide)\b[^\]]*\]")


@dataclass(frozen=True)
class Triplet:
    instruction: str
    draft: str  # "" = no draft (direct generation)
    target: str
    kind: str  # uncontrolled | correct | hallucinated
    modality: str | None = None
    media: str | None = None
    source: str = ""  # file:line
    origin: str = ""  # ACD folder, "jsonl", or "copied-target" for synthesised correct samples


@dataclass
class DataReport:
    """What was read and what was dropped, saved with the run and the checkpoint."""

    read: Counter[str]
    skipped: Counter[str]
    mixed: Counter[str] | None = None
    media: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"read": dict(self.read), "skipped": dict(self.skipped), "mixed": dict(self.mixed or {}),
                "media": self.media or {}}


def _unquote(text: str) -> str:
    """Requirement and draft come as 'text'. / 'text' / text. depending on the folder."""
    text = MEDIA_TAG.sub("", text).strip()
    if len(text) > 1 and text.endswith(".") and text[-2] in "'\"":
        text = text[:-1]
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if text.endswith("..") and not text.endswith("..."):  # video q-a-c: sentence dot + template dot
        text = text[:-1]
    return text.strip()


def parse_human_turn(value: str) -> tuple[str, str | None]:
    """(instruction, draft); draft is None when the turn is a plain instruction (no draft caption)."""
    body = MEDIA_TAG.sub("", value)
    if REQUIREMENT not in body:
        return body.strip(), None
    start = body.index(REQUIREMENT) + len(REQUIREMENT)
    mid = body.find(EXISTING, start)
    if mid < 0:
        raise ValueError(f"has {REQUIREMENT!r} but no {EXISTING!r}")
    rest = body[mid + len(EXISTING):]
    end = rest.find(CLOSING)
    instruction = _unquote(body[start:mid])
    return instruction, _unquote(rest[:end] if end >= 0 else rest)


def _acd_record(record: dict[str, Any], where: str, folder: str) -> Triplet | str:
    """One ACD line -> a Triplet, or the reason it is skipped (a known quirk, counted)."""
    conv = record.get("conversations")
    if not (isinstance(conv, list) and len(conv) == 2 and all(isinstance(c, dict) for c in conv)):
        raise InputError(where, "conversations", "expected [human turn, gpt turn]")
    if (conv[0].get("from"), conv[1].get("from")) != ("human", "gpt"):
        raise InputError(where, "conversations", f"turns are {conv[0].get('from')!r}, {conv[1].get('from')!r}, "
                         "expected 'human', 'gpt'")
    human, target = conv[0].get("value"), conv[1].get("value")
    for i, value in enumerate((human, target)):
        if not isinstance(value, str) or not value.strip():
            raise InputError(where, f"conversations[{i}].value", "missing or empty")
    assert isinstance(human, str) and isinstance(target, str)
    modality = next((m for m in MODALITIES if m in record), None)
    if modality is None or not isinstance(record[modality], str):
        raise InputError(where, "image|video|audio", "no media file name")
    try:
        instruction, draft = parse_human_turn(human)
    except ValueError as exc:
        raise InputError(where, "conversations[0].value", str(exc)) from exc
    if draft is None and folder != "gpt_q_c":
        raise InputError(where, "conversations[0].value", f"no {REQUIREMENT!r} in a {folder} line")
    if PLACEHOLDER.search(instruction) or PLACEHOLDER.search(target):
        return "template placeholder in requirement or target"
    if draft is not None and PLACEHOLDER.search(draft):
        draft = PLACEHOLDER.sub("", draft).strip()
        if not draft:
            return "draft is only a template placeholder"
    if not instruction:
        return "empty requirement"
    return Triplet(instruction, draft or "", target.strip(), FOLDER_KINDS[folder], modality, record[modality],
                   where, folder)


def read_acd(root: Path, include_direct: bool = True) -> tuple[list[Triplet], DataReport]:
    report = DataReport(Counter(), Counter())
    out: list[Triplet] = []
    files = sorted(root.rglob("caption_data/*/**/*.jsonl"))
    for path in files:
        folder = path.relative_to(root).parts[path.relative_to(root).parts.index("caption_data") + 1]
        if folder not in FOLDER_KINDS:
            raise AnyCapError(f"{path}: unknown ACD folder {folder!r} (known: {', '.join(FOLDER_KINDS)})")
        if folder == "gpt_q_c" and not include_direct:
            continue
        for lineno, record in read_jsonl(path):
            result = _acd_record(record, f"{path}:{lineno}", folder)
            if isinstance(result, str):
                report.skipped[f"{folder}: {result}"] += 1
            else:
                out.append(result)
                report.read[f"{result.modality}/{folder}/{result.kind}"] += 1
    return out, report


def read_jsonl_triplets(paths: list[Path]) -> tuple[list[Triplet], DataReport]:
    report = DataReport(Counter(), Counter())
    out = []
    for path in paths:
        for lineno, record in read_jsonl(path):
            where = f"{path}:{lineno}"
            for name in ("instruction", "target", "kind"):
                if not isinstance(record.get(name), str) or not record[name].strip():
                    raise InputError(where, name, "missing or empty string")
            if record["kind"] not in KINDS:
                raise InputError(where, "kind", f"{record['kind']!r} is not one of {', '.join(KINDS)}")
            draft = record.get("draft", "")
            if not isinstance(draft, str):
                raise InputError(where, "draft", "expected a string")
            modality, media = record.get("modality"), record.get("media")
            if modality is not None and modality not in MODALITIES:
                raise InputError(where, "modality", f"{modality!r} is not one of {', '.join(MODALITIES)}")
            if media is not None and (modality is None or not isinstance(media, str)):
                raise InputError(where, "media", "needs a string and a 'modality'")
            if record["kind"] == "correct" and draft.strip() != record["target"].strip():
                raise InputError(where, "draft", "a 'correct' sample's draft must equal its target")
            out.append(Triplet(record["instruction"].strip(), draft.strip(), record["target"].strip(),
                               record["kind"], modality, media, where, "jsonl"))
            report.read[f"{modality or 'text'}/jsonl/{record['kind']}"] += 1
    return out, report


def read_triplets(path: str | Path, include_direct: bool = True) -> tuple[list[Triplet], DataReport]:
    """An ACD folder (has caption_data/ below it), a triplet JSONL file, or a folder of them."""
    root = Path(path)
    if root.is_file():
        triplets, report = read_jsonl_triplets([root])
    elif root.is_dir() and next(root.rglob("caption_data"), None) is not None:
        triplets, report = read_acd(root, include_direct)
    elif root.is_dir():
        triplets, report = read_jsonl_triplets(sorted(root.rglob("*.jsonl")))
    else:
        raise AnyCapError(f"training data {root} not found")
    if not triplets:
        raise AnyCapError(f"no training samples in {root}")
    return triplets, report


def mix(triplets: list[Triplet], config: DataConfig) -> tuple[list[Triplet], Counter[str]]:
    """Draw samples so the kinds follow `config.ratio` (seeded, without replacement), shuffled.

    When the correct pool is too small and `fill_correct_from_targets` is on, (q, c+, c+) samples are
    made from other samples by copying the target into the draft, as ACD's own q-c-c folders were.
    """
    rng = random.Random(config.seed)
    shares = {k: w / sum(config.ratio.values()) for k, w in config.ratio.items() if w > 0}
    pools = {k: [t for t in triplets if t.kind == k] for k in shares}
    for pool in pools.values():
        rng.shuffle(pool)
    if "correct" in pools and config.fill_correct_from_targets:
        others = [t for t in triplets if t.kind != "correct"]
        rng.shuffle(others)
        pools["correct"] += [replace(t, draft=t.target, kind="correct", origin="copied-target") for t in others]
    empty = [k for k, pool in pools.items() if not pool]
    if empty:
        raise AnyCapError(f"no samples of kind {', '.join(empty)} but the ratio asks for them "
                          "(set its weight to 0 in data.ratio)")
    feasible = int(min(len(pools[k]) / s for k, s in shares.items()))
    total = config.num_samples or feasible
    if total > feasible:
        raise AnyCapError(f"data.num_samples {total} is more than the data allows at this ratio ({feasible}); "
                          f"available: {', '.join(f'{k} {len(p)}' for k, p in pools.items())}")
    counts = {k: int(total * s) for k, s in shares.items()}
    by_remainder = sorted(shares, key=lambda k: total * shares[k] - counts[k], reverse=True)
    for k in by_remainder[:total - sum(counts.values())]:  # largest remainders make the sum exact
        counts[k] += 1
    mixed = [t for k, n in counts.items() for t in pools[k][:n]]
    rng.shuffle(mixed)
    return mixed, Counter(t.kind + (" (copied target)" if t.origin == "copied-target" else "") for t in mixed)


def files_by_name(media_dir: str | Path | None) -> dict[str, Path]:
    """File name -> path for every file below media_dir (ACD names media by bare file name)."""
    if not media_dir:
        return {}
    root = Path(media_dir)
    if not root.is_dir():
        raise AnyCapError(f"media directory {root} does not exist")
    return {p.name: p for p in root.rglob("*") if p.is_file()}


def resolve_media(triplets: list[Triplet], config: DataConfig,
                  has_encoder: dict[str, bool]) -> tuple[list[tuple[Triplet, Path | None]], dict[str, Any]]:
    """Attach media paths. `auto`: use what is found, train the rest text-only (and say so);
    `required`: a missing file is an error; `none`: text only."""
    index = files_by_name(config.media_dir) if config.media != "none" else {}
    out: list[tuple[Triplet, Path | None]] = []
    found: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    for t in triplets:
        path = None
        if t.media and t.modality and config.media != "none":
            path = index.get(Path(t.media).name) or (Path(t.media) if Path(t.media).is_absolute() else None)
            if path is not None and not path.is_file():
                path = None
            if path is not None and not has_encoder.get(t.modality, False):
                path = None  # no encoder for this modality in the config: text-only
                missing[f"{t.modality} (no encoder)"] += 1
            elif path is None:
                if config.media == "required":
                    raise InputError(t.source, t.modality, f"media file {t.media!r} not found under "
                                     f"{config.media_dir or '(no data.media_dir)'} (data.media: required)")
                missing[t.modality] += 1
            else:
                found[t.modality] += 1
        out.append((t, path))
    text_only = not found
    summary = {"policy": config.media, "media_dir": config.media_dir, "with_media": dict(found),
               "without_media": dict(missing), "text_only": text_only}
    if text_only:
        log.warning("ACM data: no media files used (%s): training text-only on instruction + draft -> target",
                    "data.media: none" if config.media == "none" else
                    f"none found under {config.media_dir}" if config.media_dir else "no data.media_dir given")
    elif missing:
        log.warning("ACM data: %d samples have media, %d train text-only (files not found)",
                    sum(found.values()), sum(missing.values()))
    return out, summary


class ACMDataset:
    """Map-style dataset: tokenises and loads media lazily (workers do the decoding)."""

    def __init__(self, samples: list[tuple[Triplet, Path | None]], tokenizer: Any, processor: Any,
                 tokens_per_item: dict[str, int], max_length: int):
        self.samples, self.tokenizer, self.processor = samples, tokenizer, processor
        self.tokens_per_item, self.max_length = tokens_per_item, max_length

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from .features import load_media
        from .text import encode

        t, path = self.samples[index]
        modality = t.modality if path is not None else None
        n_media = self.tokens_per_item[modality] if modality else 0
        enc = encode(self.tokenizer, t.instruction, t.draft, n_media, modality, t.target, self.max_length)
        row: dict[str, Any] = {"input_ids": enc.input_ids, "labels": enc.labels}
        if modality and path is not None:
            row[modality] = load_media(modality, path, self.processor)
        return row


class Collator:
    """Right-pads text; stacks each modality's tensors in sample order (matching placeholder order)."""

    def __init__(self, pad_token_id: int):
        self.pad = pad_token_id

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        batch: dict[str, Any] = {
            "input_ids": torch.tensor([r["input_ids"] + [self.pad] * (width - len(r["input_ids"])) for r in rows]),
            "attention_mask": torch.tensor([[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"]))
                                            for r in rows]),
            "labels": torch.tensor([r["labels"] + [-100] * (width - len(r["labels"])) for r in rows]),
        }
        for modality in MODALITIES:
            tensors = [r[modality] for r in rows if modality in r]
            if tensors:
                batch[modality] = torch.stack(tensors)
        return batch
