"""`predictions:<file>`: captions someone already has, matched to the run's items.

A record with an item id (and optionally a task) is matched on them; a record without one is
matched on its media name — the basename, else the stem, of a path or URL — and, where several
items share that medium, on the instruction it was asked. Records for tasks not selected are
ignored; an unknown id or medium, an ambiguous match and a duplicate are errors naming file:line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ..types import GENERATION_ERROR, OK, InputError, Item, Prediction
from .base import SystemBase
from .importers import Imported, read_predictions


def media_keys(name: str) -> tuple[str, str]:
    """(basename, stem) of a path, file name or URL."""
    base = re.split(r"[/\\]", name.split("?")[0].split("#")[0].rstrip("/"))[-1]
    return base, base.rsplit(".", 1)[0] if "." in base else base


def _norm(text: str) -> str:
    return " ".join(text.replace("<image>", " ").split()).casefold()


class _Matcher:
    def __init__(self, items: Iterable[Item], all_ids: dict[str, set[str]]):
        self.all_ids = all_ids
        self.tasks = sorted(all_ids)
        self.by_name: dict[str, list[Item]] = {}
        self.by_stem: dict[str, list[Item]] = {}
        for item in items:
            if item.media:
                base, stem = media_keys(item.media)
                self.by_name.setdefault(base, []).append(item)
                self.by_stem.setdefault(stem, []).append(item)

    def find(self, rec: Imported) -> tuple[str, str] | None:
        """(task, item id) of the record's item; None when it belongs to a task not selected."""
        if rec.task is not None and rec.task not in self.all_ids:
            return None
        if rec.item_id is not None:
            return self._by_id(rec, rec.item_id)
        return self._by_media(rec)

    def _by_id(self, rec: Imported, item_id: str) -> tuple[str, str]:
        task = rec.task
        owners = [task] if task is not None else [t for t in self.tasks if item_id in self.all_ids[t]]
        if not owners or item_id not in self.all_ids[owners[0]]:
            raise InputError(rec.where, "id",
                             f"unknown id {item_id!r} (not an item of {task or ', '.join(self.tasks)})")
        if len(owners) > 1:
            raise InputError(rec.where, "id", f"id {item_id!r} is in several tasks ({', '.join(owners)}): "
                             "add a 'task' field to each line")
        return owners[0], item_id

    def _by_media(self, rec: Imported) -> tuple[str, str]:
        assert rec.media is not None
        base, stem = media_keys(rec.media)
        found = self.by_name.get(base) or self.by_stem.get(stem) or []
        if rec.task is not None:
            found = [i for i in found if i.task == rec.task]
        if not found:
            raise InputError(rec.where, rec.media_field, f"no item of {rec.task or ', '.join(self.tasks)} has the "
                             f"media {rec.media!r} (compared by file name {base!r} and stem {stem!r})")
        shared = found
        if len(found) > 1 and rec.instruction:
            asked = _norm(rec.instruction)
            exact = [i for i in found if _norm(i.instruction) == asked]
            found = exact or [i for i in found if _norm(i.instruction) in asked or asked in _norm(i.instruction)]
        if len(found) != 1:
            which = ", ".join(f"{i.task}:{i.id}" for i in shared[:5])
            why = "the record has no instruction" if not rec.instruction else \
                f"its instruction matches {len(found) or 'none'} of them"
            raise InputError(rec.where, rec.media_field, f"the media {rec.media!r} matches {len(shared)} items "
                             f"({which}) and {why}; add an item id to tell them apart")
        return found[0].task, found[0].id


class PredictionsSystem(SystemBase):
    """Captions from a file; the format is detected from its first record (see importers.py)."""

    cacheable = False
    needs_media = False

    def __init__(self, path: str | Path, items: Iterable[Item], all_ids: dict[str, set[str]]):
        self.path = Path(path)
        self.spec = f"predictions:{self.path.name}"
        self.format, records = read_predictions(self.path)
        matcher = _Matcher(items, all_ids)
        self.captions: dict[tuple[str, str], str] = {}
        seen: dict[tuple[str, str], Imported] = {}
        for rec in records:
            key = matcher.find(rec)
            if key is None:
                continue
            first = seen.get(key)
            if first is not None:
                if first.variant != rec.variant:
                    continue  # the same sample under another lm-eval filter: same generation
                if rec.item_id is not None:
                    raise InputError(rec.where, "id", f"duplicate id {key[1]!r} for task {key[0]} "
                                     f"(first at {first.where})")
                raise InputError(rec.where, rec.media_field, f"a second caption for item {key[1]!r} of task "
                                 f"{key[0]} (first at {first.where})")
            seen[key] = rec
            self.captions[key] = rec.caption

    def settings(self) -> dict[str, str]:
        return {"file": str(self.path), "format": self.format}

    async def generate(self, item: Item) -> Prediction:
        caption = self.captions.get((item.task, item.id))
        if caption is None:
            return Prediction(item.task, item.id, self.spec, "", GENERATION_ERROR,
                              f"no caption for this item in {self.path}")
        return Prediction(item.task, item.id, self.spec, caption, OK)
