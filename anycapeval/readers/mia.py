"""MIA-Bench items: `instruction_benchmark_all.json` (a JSON array of instructions with their weighted
components), one image item each.

Images: `--media-dir` (matched by `image_name`, the URL's file name or `<index>.<ext>`), then the
`datasets` copy of MIA-Bench at the task's pinned revision, cached (mia_images.py); otherwise
`media_path=None` (the judge then sees text only, with a warning).
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from ..files import media_index, read_json
from ..task_config import Task
from ..types import AnyCapError, InputError, Item
from .mia_images import DatasetUnavailable, dataset_images

DATA_FILE = "instruction_benchmark_all.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")


def _find_data_file(task: Task, data_dir: str | None) -> Path:
    name = task.config.data_file or DATA_FILE
    if not data_dir:
        raise AnyCapError(f"task {task.name}: pass --data-dir, the folder holding {name} (the MIA-Bench release)")
    root = Path(data_dir).expanduser()
    if root.is_file():
        return root
    if (root / name).is_file():
        return root / name
    found = sorted(root.rglob(name)) if root.is_dir() else []
    if not found:
        raise AnyCapError(f"task {task.name}: {name} not found under {root}")
    return found[0]


def _url_name(url: str) -> str:
    return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name


def _local_names(index: int, record: dict[str, Any]) -> list[str]:
    names = [str(record["image_name"])] if record.get("image_name") else []
    names.append(_url_name(record["image"]))
    names += [f"{index}{suffix}" for suffix in IMAGE_SUFFIXES]
    return [n for n in names if n]


def resolve_images(records: list[dict[str, Any]], media_dir: str | None,
                   options: dict[str, Any]) -> list[Path | None]:
    """`--media-dir` files first (by image_name, the URL's file name or `<index>.<ext>`); the rest from
    the `datasets` copy of MIA-Bench (mia_images.py). Without either, None: judged text-only."""
    local = media_index(Path(media_dir).resolve(), "image") if media_dir else {}
    paths: list[Path | None] = [next((local[n] for n in _local_names(i, r) if n in local), None)
                                for i, r in enumerate(records)]
    if all(paths) or not options.get("hf_dataset", True):
        return paths
    try:
        from_dataset = dataset_images(records, options)
    except DatasetUnavailable:
        return paths
    return [p or d for p, d in zip(paths, from_dataset)]


def _check(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise InputError(where, "<record>", "expected a JSON object")
    for name, kind in (("image", str), ("instruction", str), ("components", list), ("component_weight", list),
                       ("component_type", list)):
        if not isinstance(record.get(name), kind):
            raise InputError(where, name, f"missing or not a {kind.__name__}")
    n = len(record["components"])
    if n == 0:
        raise InputError(where, "components", "empty")
    for name in ("component_weight", "component_type"):
        if len(record[name]) != n:
            raise InputError(where, name, f"{len(record[name])} entries for {n} components")
    weights = record["component_weight"]
    if not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in weights):
        raise InputError(where, "component_weight", f"weights must be positive numbers, got {weights}")
    return record


def load_mia_items(task: Task, data_dir: str | None, media_dir: str | None) -> list[Item]:
    path = _find_data_file(task, data_dir)
    records = read_json(path)
    if not isinstance(records, list):
        raise InputError(str(path), "<file>", "expected a JSON array of instructions")
    records = [_check(r, f"{path}[{i}]") for i, r in enumerate(records)]
    options = task.config.options
    images = resolve_images(records, media_dir, options)
    items = []
    for index, (record, image) in enumerate(zip(records, images)):
        weights = [float(w) for w in record["component_weight"]]
        items.append(Item(
            task=task.name, id=str(index), modality="image", instruction=record["instruction"], reference="",
            instruction_type=str(record.get("type", "")), dimension="all", length_constraint="",
            media=record["image"], media_path=image, source=f"{path}[{index}]",
            extra={"components": [str(c) for c in record["components"]], "weights": weights,
                   "types": [str(t) for t in record["component_type"]]},
        ))
    return items
