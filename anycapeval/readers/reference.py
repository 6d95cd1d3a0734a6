"""AudioCaps and Clotho items: one audio clip each, with all its human reference captions (CSV files)."""

from __future__ import annotations

import csv
from pathlib import Path

from ..files import media_index
from ..task_config import Task
from ..types import AnyCapError, InputError, Item


def _reference_file(task: Task, data_dir: str | None) -> Path:
    name = task.config.data_file
    if not data_dir:
        raise AnyCapError(f"task {task.name}: pass --data-dir, the folder holding {name}")
    root = Path(data_dir).expanduser()
    found = [root / name] if (root / name).is_file() else sorted(root.rglob(name)) if root.is_dir() else []
    if not found:
        raise AnyCapError(f"task {task.name}: {name} not found under {root}")
    return found[0]


def _rows(path: Path, required: tuple[str, ...]) -> list[tuple[str, dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as fh:  # newline="": the AudioCaps file has CRLF endings
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(str(path), missing[0], f"column missing (has {reader.fieldnames})")
        return [(f"{path}:{reader.line_num}", row) for row in reader]


def _audiocaps(path: Path) -> dict[str, tuple[list[str], str]]:
    """youtube_id -> (its captions, where) from `audiocap_id,youtube_id,start_time,caption`, one caption a row."""
    clips: dict[str, tuple[list[str], str]] = {}
    for where, row in _rows(path, ("youtube_id", "caption")):
        clip, caption = (row["youtube_id"] or "").strip(), (row["caption"] or "").strip()
        if not clip:
            raise InputError(where, "youtube_id", "empty")
        if not caption:
            raise InputError(where, "caption", "empty reference caption")
        clips.setdefault(clip, ([], where))[0].append(caption)
    return clips


def _clotho(path: Path) -> dict[str, tuple[list[str], str]]:
    """file_name -> (caption_1..caption_5, where)."""
    clips: dict[str, tuple[list[str], str]] = {}
    for where, row in _rows(path, ("file_name", "caption_1")):
        name = (row["file_name"] or "").strip()
        if not name:
            raise InputError(where, "file_name", "empty")
        if name in clips:
            raise InputError(where, "file_name", f"duplicate clip {name!r} (first at {clips[name][1]})")
        captions = [row[k].strip() for k in sorted(row, key=str) if k and k.startswith("caption_") and row[k]]
        if not captions:
            raise InputError(where, "caption_1", "no reference caption")
        clips[name] = (captions, where)
    return clips


READERS = {"audiocaps": (_audiocaps, "{}.wav"), "clotho": (_clotho, "{}")}


def load_reference_items(task: Task, data_dir: str | None, media_dir: str | None) -> list[Item]:
    cfg = task.config
    fmt = str(cfg.options.get("format", cfg.dataset))
    if fmt not in READERS:
        raise AnyCapError(f"task {cfg.name}: options.format must be one of {', '.join(READERS)}, got {fmt!r}")
    reader, media_pattern = READERS[fmt]
    path = _reference_file(task, data_dir)
    media = media_index(Path(media_dir).resolve(), cfg.modality) if media_dir else {}
    instruction = str(cfg.options.get("instruction", "Describe the audio in one short sentence."))
    dimension = next(iter(cfg.dimensions.values()), "all")
    items = []
    for clip, (refs, where) in reader(path).items():
        name = media_pattern.format(clip)
        items.append(Item(task=cfg.name, id=clip, modality=cfg.modality, instruction=instruction, reference=refs[0],
                          instruction_type="brief", dimension=dimension, length_constraint="", media=name,
                          media_path=media.get(name), source=where, references=tuple(refs)))
    return items
