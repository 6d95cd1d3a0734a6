"""Reading AnyCapEval items from the official layout (or the embedded demo set).

Official layout: one JSONL record per item with `id`, the media file name (`image`/`video`/`audio`),
`conversations` (human = instruction, gpt = reference), `restriction` = [instruction type, length
sentence] and, for content items, `key_point`. Files may sit in `<root>/<modality>/`,
`<root>/anycapeval_<modality>/`, `<root>/`, or anywhere below the root (the Hugging Face release).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from .registry import Task
from .types import AnyCapError, InputError, Item

DATA_DIR_ENV = "ANYCAPEVAL_DATA_DIR"
HF_DATASET = "qishisuren/AnyCapEval"
MEDIA_SUFFIXES = {
    "image": {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"},
    "video": {".mp4", ".mkv", ".webm", ".avi", ".mov"},
    "audio": {".wav", ".flac", ".mp3", ".ogg", ".m4a"},
}


def cache_root() -> Path:
    return Path(os.environ.get("ANYCAPEVAL_CACHE_DIR") or Path.home() / ".cache" / "anycapeval")


def fetched_data_dir() -> Path:
    return cache_root() / "data" / "AnyCapEval"


def demo_root() -> Path:
    """Demo items ship in the package; their media is generated on first use into the cache."""
    from .demo.media import DEMO_MEDIA_VERSION, ensure_demo_media

    return ensure_demo_media(cache_root() / "demo_media" / f"v{DEMO_MEDIA_VERSION}")


def demo_data_root() -> Path:
    return Path(__file__).parent / "demo" / "data"


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    for candidate in (data_dir, os.environ.get(DATA_DIR_ENV)):
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_dir():
                raise AnyCapError(f"data directory {path} does not exist")
            return path
    if fetched_data_dir().is_dir():
        return fetched_data_dir()
    raise AnyCapError(
        "AnyCapEval data not found: pass --data-dir DIR (the folder holding image/, video/, audio/), "
        f"set {DATA_DIR_ENV}, or run `anycapeval data fetch` once."
    )


def find_file(root: Path, modality: str, name: str) -> Path:
    for folder in (root / modality, root / f"anycapeval_{modality}", root):
        if (folder / name).is_file():
            return folder / name
    found = sorted(p for p in root.rglob(name) if p.is_file())
    if found:
        return found[0]
    raise AnyCapError(f"{name} not found under {root} (looked in {modality}/, anycapeval_{modality}/ and below)")


@lru_cache(maxsize=16)
def media_index(root: Path, modality: str) -> dict[str, Path]:
    """File name -> path for every media file of this modality below root (first found wins)."""
    index: dict[str, Path] = {}
    suffixes = MEDIA_SUFFIXES[modality]
    for dirpath, _dirs, files in os.walk(root):
        for name in sorted(files):
            if Path(name).suffix.lower() in suffixes:
                index.setdefault(name, Path(dirpath) / name)
    return index


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for every non-blank line; a bad line is an error naming file and line."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}", "<line>", f"not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}:{lineno}", "<line>", "expected a JSON object")
            yield lineno, record


def _field(record: dict[str, Any], name: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if name not in record:
        raise InputError(where, name, "missing")
    value = record[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError(where, name, f"expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _parse_record(task: Task, record: dict[str, Any], where: str) -> dict[str, Any]:
    cfg = task.config
    item_id = str(_field(record, "id", where, (int, str)))
    media = _field(record, cfg.modality, where, str)
    conv = _field(record, "conversations", where, list)
    turns = {t.get("from"): t.get("value") for t in conv if isinstance(t, dict)}
    if not isinstance(turns.get("human"), str) or not isinstance(turns.get("gpt"), str):
        raise InputError(where, "conversations", "needs a 'human' turn (instruction) and a 'gpt' turn (reference)")
    restriction = _field(record, "restriction", where, list)
    if len(restriction) != 2 or not all(isinstance(r, str) for r in restriction):
        raise InputError(where, "restriction", "expected [instruction type, length-constraint sentence]")
    if restriction[0] not in cfg.dimensions:
        raise InputError(where, "restriction", f"instruction type '{restriction[0]}' is not one of this "
                         f"task's types ({', '.join(cfg.dimensions)})")
    instruction, reference = str(turns["human"]), str(turns["gpt"])
    return {"id": item_id, "media": media, "instruction": instruction.replace("<image>", "").strip(),
            "reference": reference, "type": restriction[0], "constraint": restriction[1],
            "key_point": record.get("key_point")}


ANYCAPEVAL_DATASETS = ("anycapeval", "demo")


def load_items(task: Task, data_dir: str | Path | None = None, media_dir: str | Path | None = None) -> list[Item]:
    cfg = task.config
    if cfg.dataset not in ANYCAPEVAL_DATASETS:  # another benchmark: its scorer module reads its files
        from .scorers import SCORERS

        loaded = SCORERS[cfg.scorer].load_items(task, None if data_dir is None else str(data_dir),
                                                None if media_dir is None else str(media_dir))
        if not loaded:
            raise AnyCapError(f"task {cfg.name}: no items")
        return loaded
    if cfg.dataset == "demo":
        root, media_root = demo_data_root(), demo_root()
    else:
        root = resolve_data_dir(data_dir)
        media_root = Path(media_dir) if media_dir else root
    path = find_file(root, cfg.modality, cfg.data_file)
    media = media_index(media_root.resolve(), cfg.modality)
    items: list[Item] = []
    seen: dict[str, str] = {}
    for lineno, record in read_jsonl(path):
        where = f"{path}:{lineno}"
        restriction = record.get("restriction")
        if isinstance(restriction, list) and restriction and restriction[0] in cfg.skip_types:
            continue
        rec = _parse_record(task, record, where)
        if rec["id"] in seen:
            raise InputError(where, "id", f"duplicate id {rec['id']} (first at {seen[rec['id']]})")
        seen[rec["id"]] = where
        key_points: tuple[str, ...] = ()
        if cfg.aspect == "content":
            kp = rec["key_point"]
            if not isinstance(kp, list) or not all(isinstance(k, str) for k in kp):
                raise InputError(where, "key_point", "content items need a list of key-point strings")
            key_points = tuple(kp)
        items.append(Item(
            task=cfg.name, id=rec["id"], modality=cfg.modality, instruction=rec["instruction"],
            reference=rec["reference"], instruction_type=rec["type"], dimension=cfg.dimensions[rec["type"]],
            length_constraint=rec["constraint"], key_points=key_points, media=rec["media"],
            media_path=media.get(Path(rec["media"]).name), source=where,
        ))
    if not items:
        raise AnyCapError(f"{path}: no items")
    return items
