"""AnyCapEval items, from the official layout (dataset `anycapeval`) or the embedded demo set (`demo`).

Official layout: one JSONL record per item with `id`, the media file name (`image`/`video`/`audio`),
`conversations` (human = instruction, gpt = reference), `restriction` = [instruction type, length
sentence] and, for content items, `key_point`. Files may sit in `<root>/<modality>/`,
`<root>/anycapeval_<modality>/`, `<root>/`, or anywhere below the root (the Hugging Face release).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..files import cache_root, media_index, read_jsonl
from ..task_config import Task
from ..types import AnyCapError, InputError, Item

DATA_DIR_ENV = "ANYCAPEVAL_DATA_DIR"
HF_DATASET = "qishisuren/AnyCapEval"
def fetched_data_dir() -> Path:
    return cache_root() / "data" / "AnyCapEval"


def demo_root() -> Path:
    """Demo items ship in the package; their media is generated on first use into the cache."""
    from ..demo.media import DEMO_MEDIA_VERSION, ensure_demo_media

    return ensure_demo_media(cache_root() / "demo_media" / f"v{DEMO_MEDIA_VERSION}")


def demo_data_root() -> Path:
    return Path(__file__).parent.parent / "demo" / "data"


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


def load_anycapeval_items(task: Task, data_dir: str | None, media_dir: str | None) -> list[Item]:
    cfg = task.config
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
