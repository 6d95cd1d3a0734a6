"""Readers for human-judgment files: THumB ratings, FENSE AudioCaps-Eval pairwise votes, any CSV.

Two shapes come out. `Rated`: one caption, its references and a human score (THumB, CSV). `Pair`:
two captions of one clip and the annotators' votes (FENSE). FENSE is read from the original
`audiocaps_eval.json` (facet entries `[caption_1, caption_2, source_1, source_2, (extra,) votes]`; the
votes are always the last element; null facets are skipped) or from the flattened pairs JSONL. The
references follow FENSE's protocol: HC scores each caption against the other references (itself
removed); HI and HM score both captions against the references minus caption_1; MM uses all five
(n-gram metrics: the mean over the five leave-one-out sets of four, see `Pair.reference_sets`).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import read_jsonl
from ..types import AnyCapError, InputError

FORMATS = ("thumb", "fense", "csv")
FACETS = ("HC", "HI", "HM", "MM")


@dataclass(frozen=True)
class Rated:
    id: str
    candidate: str
    references: tuple[str, ...]
    human: float
    system: str = ""
    group: str = ""  # rows of one group (image) are resampled together


@dataclass(frozen=True)
class Pair:
    id: str
    facet: str  # HC | HI | HM | MM
    caption_1: str
    caption_2: str
    refs_1: tuple[str, ...]
    refs_2: tuple[str, ...]
    vote_sum: int
    all_refs: tuple[str, ...] = field(default=())

    def reference_sets(self, which: int, leave_one_out: bool) -> list[tuple[str, ...]]:
        """The reference lists caption `which` is scored against; MM with leave_one_out: five sets of four."""
        if self.facet == "MM" and leave_one_out and len(self.all_refs) > 1:
            return [self.all_refs[:i] + self.all_refs[i + 1:] for i in range(len(self.all_refs))]
        return [self.refs_1 if which == 1 else self.refs_2]


def _read_jsonl(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        return [(f"{path}:{lineno}", record) for lineno, record in read_jsonl(path)]
    except OSError as exc:
        raise AnyCapError(f"cannot read {path}: {exc.strerror}") from None


def _text(record: dict[str, Any], name: str, where: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InputError(where, name, "missing or empty caption text")
    return value


def _texts(record: dict[str, Any], name: str, where: str) -> tuple[str, ...]:
    value = record.get(name)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(where, name, "expected a non-empty list of reference captions")
    return tuple(value)


def _number(record: dict[str, Any], name: str, where: str) -> float:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(where, name, f"expected a number, got {value!r}")
    return float(value)


def read_thumb(path: Path, target: str = "human_score") -> list[Rated]:
    """THumB JSONL (one rated caption per line): candidate, references, system, image, and the score
    columns P, R, Fl, Con, Inc, human_score. `references` already excludes a Human caption's own text."""
    out = []
    for where, r in _read_jsonl(path):
        image = str(r.get("image") or r.get("coco_id") or "")
        out.append(Rated(id=f"{image}/{r.get('system', '')}", candidate=_text(r, "candidate", where),
                         references=_texts(r, "references", where), human=_number(r, target, where),
                         system=str(r.get("system", "")), group=image))
    if not out:
        raise AnyCapError(f"{path}: no rated captions")
    return out


def _votes(entry: list[Any], where: str) -> int:
    votes = entry[-1]
    if not isinstance(votes, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v in (-1, 0, 1)
                                              for v in votes):
        raise InputError(where, "votes", f"expected a list of -1/0/1 votes as the last element, got {votes!r}")
    return sum(votes)


def pair_from_facet(clip: dict[str, Any], key: str, where: str) -> Pair | None:
    """One facet entry of the original FENSE JSON as a Pair (None for a null entry)."""
    entry = clip.get(key)
    if entry is None:
        return None
    if not isinstance(entry, list) or len(entry) < 5 or not all(isinstance(c, str) for c in entry[:2]):
        raise InputError(where, key, "expected [caption_1, caption_2, source_1, source_2, (extra,) votes]")
    refs = _texts(clip, "references", where)
    facet = key.split("_")[0]
    if facet not in FACETS:
        raise InputError(where, key, f"unknown facet (known: {', '.join(FACETS)})")
    c1, c2 = entry[0], entry[1]
    if facet == "HC":
        refs_1, refs_2 = _without(refs, c1), _without(refs, c2)
    elif facet in ("HI", "HM"):
        refs_1 = refs_2 = _without(refs, c1)
    else:
        refs_1 = refs_2 = refs
    return Pair(f"{clip.get('audio_id', '')}/{key}", facet, c1, c2, refs_1, refs_2, _votes(entry, f"{where} {key}"),
                refs)


def _without(refs: tuple[str, ...], caption: str) -> tuple[str, ...]:
    kept = tuple(r for r in refs if r != caption)
    return kept or refs


def read_fense(path: Path) -> list[Pair]:
    """FENSE AudioCaps-Eval: the original JSON array or the flattened pairs JSONL."""
    pairs: list[Pair] = []
    if path.suffix == ".jsonl":
        for where, r in _read_jsonl(path):
            facet = str(r.get("facet", ""))
            if facet not in FACETS:
                raise InputError(where, "facet", f"expected one of {', '.join(FACETS)}, got {facet!r}")
            votes = r.get("votes")
            if not isinstance(votes, list):
                raise InputError(where, "votes", "expected a list of votes")
            pairs.append(Pair(f"{r.get('audio_id', '')}/{r.get('facet_key', facet)}", facet,
                              _text(r, "caption_1", where), _text(r, "caption_2", where),
                              _texts(r, "refs_for_caption_1", where), _texts(r, "refs_for_caption_2", where),
                              _votes([votes], where), _texts(r, "references", where)))
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise AnyCapError(f"cannot read {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}", "<file>", f"not JSON: {exc.msg}") from None
        if not isinstance(data, list):
            raise InputError(str(path), "<file>", "expected a JSON array of clips")
        for index, clip in enumerate(data):
            where = f"{path}: clip {index}"
            if not isinstance(clip, dict):
                raise InputError(where, "<clip>", "expected an object")
            for key in sorted(k for k in clip if k.split("_")[0] in FACETS):
                pair = pair_from_facet(clip, key, where)
                if pair is not None:
                    pairs.append(pair)
    if not pairs:
        raise AnyCapError(f"{path}: no judged pairs")
    return pairs


CSV_ROLES = ("candidate", "references", "human", "system", "id", "group")


def parse_columns(spec: str | None) -> dict[str, list[str]]:
    """`candidate=COL,references=COL[+COL...],human=COL[,system=COL][,id=COL][,group=COL]`."""
    mapping: dict[str, list[str]] = {"candidate": ["candidate"], "references": ["references"], "human": ["human"]}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        role, sep, cols = part.partition("=")
        if not sep or role not in CSV_ROLES or not cols:
            raise AnyCapError(f"--columns: '{part}' should be ROLE=COLUMN with ROLE one of {', '.join(CSV_ROLES)}")
        mapping[role] = cols.split("+")
    return mapping


def read_csv(path: Path, columns: dict[str, list[str]]) -> list[Rated]:
    """Any CSV with a caption, its references and a human score per row. A references cell holding a
    JSON list is several references; several reference columns are joined (`references=r1+r2+r3`)."""
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise AnyCapError(f"cannot read {path}: {exc.strerror}") from None
    out = []
    with fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for role, cols in columns.items():
            for col in cols:
                if col not in header:
                    raise InputError(f"{path}:1", col, f"no such column for {role} (columns: {', '.join(header)})")
        for lineno, row in enumerate(reader, 2):
            where = f"{path}:{lineno}"
            refs: list[str] = []
            for col in columns["references"]:
                cell = (row.get(col) or "").strip()
                if cell.startswith("["):
                    try:
                        value = json.loads(cell)
                    except json.JSONDecodeError:
                        raise InputError(where, col, "starts with '[' but is not a JSON list") from None
                    refs += [str(v) for v in value if str(v).strip()]
                elif cell:
                    refs.append(cell)
            cand_col, human_col = columns["candidate"][0], columns["human"][0]
            if not refs:
                raise InputError(where, "+".join(columns["references"]), "no reference caption")
            try:
                human = float(row.get(human_col) or "")
            except ValueError:
                raise InputError(where, human_col, f"not a number: {row.get(human_col)!r}") from None

            def opt(role: str, default: str, row: dict[str, Any] = row) -> str:
                return str(row.get(columns[role][0], default)) if role in columns else default

            out.append(Rated(id=opt("id", str(lineno)), candidate=_text(row, cand_col, where),
                             references=tuple(refs), human=human,
                             system=opt("system", ""), group=opt("group", opt("id", str(lineno)))))
    if not out:
        raise AnyCapError(f"{path}: no rows")
    return out
