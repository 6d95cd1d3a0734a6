"""MIA-Bench images through `datasets`: the Hub copy (`lmms-lab/MIA-Bench`, the one lmms-eval reads) has
the 400 images embedded. It is loaded at the task file's pinned revision, its rows are checked against
the instruction file (same order, same instructions), and each image is written once, with its
original bytes, to the cache (`<cache>/mia_bench/<dataset>@<revision>/<row>.<ext>`); later runs read the
files and never load the dataset again.

`ANYCAPEVAL_MIA_DATASET` (or the task option `hf_dataset`) may name a local copy instead: a folder
in the Hub layout (`data/test-*.parquet`, e.g. a git clone of the dataset repository).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ..files import cache_root
from ..types import AnyCapError

DATASET_ENV = "ANYCAPEVAL_MIA_DATASET"
HF_DATASET = "lmms-lab/MIA-Bench"
SPLIT = "test"
_DONE = "complete.json"


def dataset_source(options: dict[str, Any]) -> tuple[str, str | None]:
    """(dataset path or Hub id, revision) for this task."""
    source = os.environ.get(DATASET_ENV) or str(options.get("hf_dataset") or HF_DATASET)
    revision = options.get("hf_revision")
    return source, None if revision is None else str(revision)


def _folder(source: str, revision: str | None, fingerprint: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", source.strip("/"))[-60:]
    return cache_root() / "mia_bench" / f"{name}@{revision or fingerprint}"


def _same(a: Any, b: Any) -> bool:
    return " ".join(str(a).split()) == " ".join(str(b).split())


def check_order(rows: Any, records: list[dict[str, Any]], where: str) -> None:
    """The dataset must list the instruction file's items in the same order (the item id is the row)."""
    if len(rows) != len(records):
        raise AnyCapError(f"{where}: {len(rows)} rows, but the instruction file has {len(records)} items; pin the "
                          "revision that matches it (task option hf_revision) or pass --media-dir with the images")
    for index, (row, record) in enumerate(zip(rows, records)):
        if not _same(row["instruction"], record["instruction"]) or \
                [str(c) for c in row.get("components") or []] != [str(c) for c in record["components"]]:
            raise AnyCapError(f"{where}: row {index} is not item {index} of the instruction file (instruction "
                              f"{str(row['instruction'])[:60]!r} vs {record['instruction'][:60]!r}); the dataset's "
                              "order differs: pin the revision that matches the instruction file")


class DatasetUnavailable(AnyCapError):
    """The dataset could not be loaded (no network and no local copy): the images are then missing."""


def _suffix(data: bytes) -> str:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return "." + {"JPEG": "jpg"}.get(image.format or "", (image.format or "png").lower())


def dataset_images(records: list[dict[str, Any]], options: dict[str, Any]) -> list[Path]:
    """One image file per item, from the cache or else from the dataset (which is then cached)."""
    source, revision = dataset_source(options)
    local = Path(source).expanduser().exists()
    if revision is None and not local:  # unpinned: take the Hub's current commit, and cache and record it by sha
        revision = _hub_head(source)
    if revision and not local:
        folder = _folder(source, revision, "")
        done = folder / _DONE
        if done.is_file():
            names = json.loads(done.read_text(encoding="utf-8"))["files"]
            if len(names) == len(records):
                return [folder / n for n in names]
    rows = _load(source, None if local else revision)
    where = f"{source}@{revision}" if revision and not local else source
    check_order(rows, records, where)
    folder = _folder(source, None if local else revision, rows._fingerprint)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index, image in enumerate(rows["image"]):
        data = image.get("bytes") or Path(image["path"]).read_bytes()
        name = f"{index:03d}{_suffix(data)}"
        target = folder / name
        if not target.is_file() or target.stat().st_size != len(data):
            tmp = target.with_name(target.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(target)
        names.append(name)
    (folder / _DONE).write_text(json.dumps({"dataset": source, "revision": revision, "files": names}),
                                encoding="utf-8")
    return [folder / n for n in names]


def _hub_head(source: str) -> str | None:
    """The dataset's current commit on the Hub, or None when the Hub cannot be reached."""
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(source).sha
    except Exception:  # offline or unknown: load_dataset will say what went wrong
        return None


def _load(source: str, revision: str | None) -> Any:
    """The test split with the images as undecoded {bytes, path} records."""
    import datasets

    try:
        rows = datasets.load_dataset(source, revision=revision, split=SPLIT)
    except Exception as exc:  # no network, unknown revision, no such folder: say what to do instead
        raise DatasetUnavailable(f"could not load the MIA-Bench images from {source}"
                          f"{'@' + revision if revision else ''} ({type(exc).__name__}: {exc}). Without network, "
                          f"pass --media-dir with the images, or set {DATASET_ENV} to a local copy of the "
                          "dataset") from None
    if "image" not in rows.column_names:
        raise AnyCapError(f"{source}: no 'image' column (columns: {', '.join(rows.column_names)})")
    return rows.cast_column("image", datasets.Image(decode=False))
