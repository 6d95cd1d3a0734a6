"""The items of a task, read by its benchmark's reader (`readers/`), chosen by the task's `dataset`.

A new benchmark adds one reader module and one line here (docs/design.md, "Adding a benchmark").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from .readers.anycapeval import anycapeval_item_file, load_anycapeval_items
from .readers.mia import load_mia_items
from .readers.reference import load_reference_items
from .readers.vidcap import load_vidcap_items
from .store import Cache
from .task_config import Task
from .types import AnyCapError, Item

Reader = Callable[[Task, "str | None", "str | None"], list[Item]]  # (task, data_dir, media_dir) -> items

READERS: dict[str, Reader] = {
    "anycapeval": load_anycapeval_items, "demo": load_anycapeval_items,
    "mia_bench": load_mia_items, "vidcapbench": load_vidcap_items,
    "audiocaps": load_reference_items, "clotho": load_reference_items,
}


def load_items(task: Task, data_dir: str | Path | None = None, media_dir: str | Path | None = None) -> list[Item]:
    cfg = task.config
    if cfg.dataset not in READERS:
        raise AnyCapError(f"task {cfg.name}: no reader for dataset '{cfg.dataset}' (known: {', '.join(READERS)})")
    items = READERS[cfg.dataset](task, None if data_dir is None else str(data_dir),
                                 None if media_dir is None else str(media_dir))
    if not items:
        raise AnyCapError(f"task {cfg.name}: no items")
    return items


def item_source(task: Task, data_dir: str | Path | None = None, media_dir: str | Path | None = None, *,
                cache: Cache) -> Sequence[Item]:
    """The task's items for a run: the same as load_items, but an AnyCapEval-layout file's items stay in
    the file (readers.anycapeval.ItemFile: read a block at a time), so a task of a million items is not
    held in memory. Slices of it are lazy too; list() one for its Items. The file's check is remembered
    in the cache (a file with the same bytes is not checked again)."""
    if task.config.dataset in ("anycapeval", "demo"):
        return anycapeval_item_file(task, None if data_dir is None else str(data_dir),
                                    None if media_dir is None else str(media_dir), cache)
    return load_items(task, data_dir, media_dir)


class ItemChain(Iterable[Item]):
    """Several tasks' items one after another, read again on each iteration (nothing is held)."""

    def __init__(self, parts: Iterable[Iterable[Item]]):
        self.parts = list(parts)

    def __iter__(self) -> Iterator[Item]:
        for part in self.parts:
            yield from part
