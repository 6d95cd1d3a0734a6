"""The paper's published numbers (`references/paper_*.csv`) and which run rows they belong beside.

A run maps to a paper system by its label (`--label 'GPT-4o=runs/x'`, or `display_name` in the
manifest) when the label is a paper system name ("GPT-4o", "InternVL2.5-8B", "GPT-4o +ACM-8B"), else by
its system spec through `references/paper_systems.csv` (glob patterns, e.g. `openai:gpt-4o-20*`). A
refined run whose checkpoint matches an "+ACM-…" pattern takes its base's paper name plus that suffix.
Names compare on letters and digits only, case-insensitively ("gpt-4o+acm-8b" is "GPT-4o +ACM-8B").
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from importlib import resources
from pathlib import Path

from ..types import InputError


@dataclass(frozen=True)
class PaperValue:
    value: float
    system: str
    source: str  # "paper table <name>, text line <n>"


def norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _references_dir() -> Path:
    return Path(str(resources.files("anycapeval.references")))


@lru_cache(maxsize=1)
def paper_values() -> dict[tuple[str, str], list[tuple[frozenset[str], PaperValue]]]:
    """{(paper task, normalized system): [(normalized column aliases, value), ...]} from every paper_*.csv."""
    out: dict[tuple[str, str], list[tuple[frozenset[str], PaperValue]]] = {}
    for path in sorted(_references_dir().glob("paper_*.csv")):
        if path.name == "paper_systems.csv":
            continue
        with path.open(newline="", encoding="utf-8") as f:
            for lineno, row in enumerate(csv.DictReader(f), 2):
                try:
                    value = float(row["value"])
                except (KeyError, TypeError, ValueError):
                    raise InputError(f"{path}:{lineno}", "value", f"not a number: {row.get('value')!r}") from None
                aliases = frozenset(norm(a) for a in row["column"].split("|"))
                source = f"paper table {row['paper_table']}, text line {row['paper_txt_line']}"
                out.setdefault((row["task"], norm(row["system"])), []).append(
                    (aliases, PaperValue(value, row["system"], source)))
    return out


@lru_cache(maxsize=1)
def _systems() -> tuple[tuple[str, str], ...]:
    with (_references_dir() / "paper_systems.csv").open(newline="", encoding="utf-8") as f:
        return tuple((row["paper_name"], row["spec_pattern"]) for row in csv.DictReader(f))


@lru_cache(maxsize=1)
def _known_names() -> dict[str, str]:
    return {norm(v.system): v.system for rows in paper_values().values() for _, v in rows}


def name_for_spec(spec: str) -> str | None:
    """The paper name of a base system spec (not the +ACM suffixes)."""
    for name, pattern in _systems():
        if not name.startswith("+") and fnmatchcase(spec.lower(), pattern.lower()):
            return name
    return None


def paper_name(label: str, system: str, base_name: str | None) -> str | None:
    """The paper system a run row stands for, or None. `base_name`: the paper name of its base, if any."""
    known = _known_names()
    if norm(label) in known:
        return known[norm(label)]
    if base_name is None:
        return name_for_spec(system)
    for name, pattern in _systems():
        if name.startswith("+") and fnmatchcase(system.lower(), pattern.lower()):
            candidate = f"{base_name} {name}"
            return known.get(norm(candidate))
    return None


def lookup(task: str, system: str, column: str) -> PaperValue | None:
    """The paper's number for this task, paper system and column (a dimension, "Avg" or a metric name).
    A paper task stands for run tasks of the same name or that name plus a suffix (`vidcapbench_ae`)."""
    want = norm(column)
    for (paper_task, paper_system), rows in paper_values().items():
        if paper_system != norm(system) or not (task == paper_task or task.startswith(paper_task + "_")):
            continue
        for aliases, value in rows:
            if want in aliases:
                return value
    return None
