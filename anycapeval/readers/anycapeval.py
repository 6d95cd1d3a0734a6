"""AnyCapEval items, from the official layout (dataset `anycapeval`) or the embedded demo set (`demo`).

Official layout: one JSONL record per item with `id`, the media file name (`image`/`video`/`audio`),
`conversations` (human = instruction, gpt = reference), `restriction` = [instruction type, length
sentence] and, for content items, `key_point`. Files may sit in `<root>/<modality>/`,
`<root>/anycapeval_<modality>/`, `<root>/`, or anywhere below the root (the Hugging Face release).
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from ..files import cache_root, media_index, read_jsonl_offsets
from ..media import media_hash
from ..task_config import Task
from ..types import AnyCapError, InputError, Item

if TYPE_CHECKING:
    from ..store import Cache

DATA_DIR_ENV = "ANYCAPEVAL_DATA_DIR"
HF_DATASET = "qishisuren/AnyCapEval"
CHECK_VERSION = 1  # part of a remembered check's key: bump it when `_Builder.check` or what `_scan` keeps changes


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


def _check_record(task: Task, record: dict[str, Any], where: str) -> None:
    """Every check of one record's fields but the key points (InputError naming file:line and field)."""
    cfg = task.config
    _field(record, "id", where, (int, str))
    _field(record, cfg.modality, where, str)
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


def _source(task: Task, data_dir: str | None, media_dir: str | None) -> tuple[Path, dict[str, Path]]:
    cfg = task.config
    if cfg.dataset == "demo":
        root, media_root = demo_data_root(), demo_root()
    else:
        root = resolve_data_dir(data_dir)
        media_root = Path(media_dir) if media_dir else root
    return find_file(root, cfg.modality, cfg.data_file), media_index(media_root.resolve(), cfg.modality)


class _Builder:
    """Record -> Item for one task's file, with one copy of each instruction type and length sentence."""

    def __init__(self, task: Task, media: dict[str, Path]):
        self.task, self.cfg, self.media = task, task.config, media
        self.shared: dict[str, str] = {}

    def skipped(self, record: dict[str, Any]) -> bool:
        restriction = record.get("restriction")
        return isinstance(restriction, list) and bool(restriction) and restriction[0] in self.cfg.skip_types

    def check(self, record: dict[str, Any], where: str, seen: dict[str, str]) -> None:
        """Every check of a record (InputError naming file:line and field); `item` reads it after.
        `seen`: the ids so far -> where each was."""
        _check_record(self.task, record, where)
        item_id = str(record["id"])
        if item_id in seen:
            raise InputError(where, "id", f"duplicate id {item_id} (first at {seen[item_id]})")
        seen[item_id] = where
        if self.cfg.aspect == "content":
            kp = record.get("key_point")
            if not isinstance(kp, list) or not all(isinstance(k, str) for k in kp):
                raise InputError(where, "key_point", "content items need a list of key-point strings")

    def item(self, record: dict[str, Any], where: str) -> Item:
        """The Item of a record that passed `check` (no check is made again: ItemFile re-reads its file,
        checked whole once, a block at a time)."""
        cfg, shared = self.cfg, self.shared
        turns: dict[Any, Any] = {t.get("from"): t.get("value") for t in record["conversations"] if isinstance(t, dict)}
        kind, constraint = record["restriction"]
        media = record[cfg.modality]
        name = media
        if "/" in name or name in ("", ".", ".."):
            name = Path(name).name
        return Item(
            task=cfg.name, id=str(record["id"]), modality=cfg.modality,
            instruction=turns["human"].replace("<image>", "").strip(), reference=turns["gpt"],
            instruction_type=shared.setdefault(kind, kind), dimension=cfg.dimensions[kind],
            length_constraint=shared.setdefault(constraint, constraint),
            key_points=tuple(record["key_point"]) if cfg.aspect == "content" else (),
            media=media, media_path=self.media.get(name), source=where,
        )


class ItemFile(Sequence[Item]):
    """A task's items as places in its data file, read again a block at a time when iterated or sliced:
    a million-item task costs ~12 bytes per item (plus its ids) instead of ~1 KB per Item. The file is
    read and checked whole when this is made (every error is raised then, as load_items raises it), and
    it must not change while the run reads it. A slice is another ItemFile; iterate it (or list() it)
    for the Items."""

    BLOCK = 4096

    def __init__(self, path: Path, builder: _Builder, offsets: array[int], linenos: array[int], ids: set[str],
                 start: int = 0, stop: int | None = None):
        self.path, self.builder, self.offsets, self.linenos, self.ids = path, builder, offsets, linenos, ids
        self.start, self.stop = start, len(offsets) if stop is None else stop

    def __len__(self) -> int:
        return self.stop - self.start

    @overload
    def __getitem__(self, index: int) -> Item: ...

    @overload
    def __getitem__(self, index: slice) -> ItemFile: ...

    def __getitem__(self, index: int | slice) -> Item | ItemFile:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise ValueError("ItemFile slices are contiguous")
            return ItemFile(self.path, self.builder, self.offsets, self.linenos, self.ids, self.start + start,
                            self.start + max(start, stop))
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        n = self.start + (index % len(self))
        return self._read(n, n + 1)[0]

    def __iter__(self) -> Iterator[Item]:
        for start in range(self.start, self.stop, self.BLOCK):
            yield from self._read(start, min(start + self.BLOCK, self.stop))

    def _read(self, start: int, stop: int) -> list[Item]:
        out: list[Item] = []
        if start >= stop:
            return out
        item, name = self.builder.item, str(self.path)
        with self.path.open("rb") as fh:
            fh.seek(self.offsets[start])
            position, n = self.offsets[start], start
            for line in fh:
                if position == self.offsets[n]:
                    out.append(item(json.loads(line.decode("utf-8")), f"{name}:{self.linenos[n]}"))
                    n += 1
                    if n == stop:
                        break
                position += len(line)
        if n != stop:
            raise AnyCapError(f"{self.path} changed while the run was reading it")
        return out


def _scan(path: Path, builder: _Builder, keep: bool) -> tuple[list[Item], array[int], array[int], list[str]]:
    """Read and check every record: (the Items if keep, else none; their byte offsets and line numbers;
    their ids in file order)."""
    items: list[Item] = []
    offsets, linenos = array("q"), array("l")
    seen: dict[str, str] = {}
    name = str(path)
    for lineno, offset, record in read_jsonl_offsets(path):
        if builder.skipped(record):
            continue
        where = f"{name}:{lineno}"
        builder.check(record, where, seen)
        if keep:
            items.append(builder.item(record, where))
        offsets.append(offset)
        linenos.append(lineno)
    if not offsets:
        raise AnyCapError(f"{path}: no items")
    return items, offsets, linenos, list(seen)


def load_anycapeval_items(task: Task, data_dir: str | None, media_dir: str | None) -> list[Item]:
    path, media = _source(task, data_dir, media_dir)
    return _scan(path, _Builder(task, media), keep=True)[0]


def anycapeval_item_file(task: Task, data_dir: str | None, media_dir: str | None, cache: Cache) -> ItemFile:
    """The same items as load_anycapeval_items, kept in the file (ItemFile) for a run of many items.
    A file checked before is not read and checked again: its offsets, line numbers and ids are kept in
    the cache under the hash of its bytes (media.media_hash) and the task file's hash (a warm re-run of
    a million items skips about 8 s of reading and checking; hashing costs about 0.5 s)."""
    path, media = _source(task, data_dir, media_dir)
    builder = _Builder(task, media)
    key = f"anycapeval v{CHECK_VERSION} line{array('l').itemsize} task {task.file_hash} file {media_hash(path)}"
    remembered = cache.checked_file(key)
    if remembered is None:
        _, offsets, linenos, ids = _scan(path, builder, keep=False)
        cache.remember_checked_file(key, offsets.tobytes(), linenos.tobytes(), ids)
    else:
        offsets, linenos, ids = array("q", remembered[0]), array("l", remembered[1]), remembered[2]
    return ItemFile(path, builder, offsets, linenos, set(ids))
