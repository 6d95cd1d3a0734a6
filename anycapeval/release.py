"""`anycapeval data fetch` and `anycapeval data verify`: get the official release, check it."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

from .data import load_items
from .readers.anycapeval import HF_DATASET, fetched_data_dir, find_file, resolve_data_dir
from .registry import all_tasks
from .text import ConstraintParseError, parse_length_constraint
from .types import AnyCapError

FETCH_RECORD = ".anycapeval_fetch.json"  # in the fetched folder: which commit of the dataset it holds


def fetch(target: Path | None = None, revision: str | None = None) -> Path:
    """Download the AnyCapEval release from the Hugging Face Hub into the local cache, pinned: at
    `revision`, else at the commit an earlier fetch recorded, else at the Hub's current commit, which is
    then recorded (FETCH_RECORD) and reused by every later fetch and named in every run's manifest."""
    import datetime as dt

    from huggingface_hub import HfApi, snapshot_download

    target = target or fetched_data_dir()
    try:
        revision = revision or fetched_revision(target) or HfApi().dataset_info(HF_DATASET).sha
        path = snapshot_download(repo_id=HF_DATASET, repo_type="dataset", local_dir=str(target), revision=revision)
    except Exception as exc:  # network, auth, unknown revision: say what to do instead
        raise AnyCapError(f"could not download {HF_DATASET}: {exc}. Without network, copy the release to a "
                          "folder and pass --data-dir DIR.") from None
    record = {"dataset": HF_DATASET, "revision": revision, "fetched_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    (Path(path) / FETCH_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return Path(path)


def fetched_revision(data_dir: str | Path | None) -> str | None:
    """The dataset commit `anycapeval data fetch` recorded in this folder (None for other folders)."""
    if data_dir is None:
        return None
    path = Path(data_dir) / FETCH_RECORD
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["revision"]) or None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def known_checksums() -> dict[str, Any]:
    text = (resources.files("anycapeval.references") / "anycapeval_files.json").read_text(encoding="utf-8")
    return json.loads(text)["files"]


def verify(data_dir: str | Path | None) -> list[dict[str, Any]]:
    """One row per check: name, ok (bool), detail. Counts, ids, key points, constraints, checksums."""
    root = resolve_data_dir(data_dir)
    rows: list[dict[str, Any]] = []
    for name, task in all_tasks().items():
        if task.config.dataset != "anycapeval":
            continue
        try:
            items = load_items(task, root)
        except AnyCapError as exc:
            rows.append({"check": f"{name}: load", "ok": False, "detail": str(exc)})
            continue
        expected = task.config.expected_items
        rows.append({"check": f"{name}: items", "ok": expected is None or len(items) == expected,
                     "detail": f"{len(items)} (expected {expected})"})
        if task.config.aspect == "content":
            empty = [i.id for i in items if not i.key_points]
            rows.append({"check": f"{name}: key points", "ok": True,
                         "detail": f"{sum(len(i.key_points) for i in items)} in all; items without any: "
                                   f"{', '.join(empty) or 'none'} (skipped when scoring)"})
        bad = []
        for constraint in sorted({i.length_constraint for i in items}):
            try:
                parse_length_constraint(constraint)
            except ConstraintParseError:
                bad.append(constraint)
        rows.append({"check": f"{name}: length constraints", "ok": not bad,
                     "detail": f"{len({i.length_constraint for i in items})} distinct, unparsed: {bad or 'none'}"})
        present = sum(1 for i in items if i.media_path is not None)
        rows.append({"check": f"{name}: media files", "ok": True, "detail": f"{present} of {len(items)} found"})
    for file_name, meta in known_checksums().items():
        try:
            path = find_file(root, meta["modality"], file_name)
        except AnyCapError:
            rows.append({"check": f"checksum {file_name}", "ok": True, "detail": "not present (optional)"})
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        rows.append({"check": f"checksum {file_name}", "ok": digest == meta["sha256"],
                     "detail": "matches the official release" if digest == meta["sha256"] else
                     f"differs: {digest[:16]}… vs {meta['sha256'][:16]}…"})
    return rows
