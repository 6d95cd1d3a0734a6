"""Reading finished run directories: manifest.json and summary.json up front, scores.jsonl on demand.

A leaderboard is built only from what `anycapeval run` wrote, so every number it prints can be traced
back to one file. Bad or unfinished run directories stop the build with the file and field named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import read_jsonl, read_run_file
from ..types import AnyCapError, InputError


@dataclass
class Run:
    """One run directory. `base` is the base system's spec when the run refined another system's captions."""

    path: Path
    label: str
    system: str
    base: str | None
    manifest: dict[str, Any]
    summary: dict[str, Any]
    _scores: dict[str, list[dict[str, Any]]] | None = field(default=None, repr=False)

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        return self.summary["tasks"]

    def scores(self, task: str) -> list[dict[str, Any]]:
        """The scores.jsonl rows of one task (the whole file is read once, at first use)."""
        if self._scores is None:
            self._scores = _read_scores(self.path / "scores.jsonl")
        return self._scores.get(task, [])


def _read_scores(path: Path) -> dict[str, list[dict[str, Any]]]:
    if not path.is_file():
        raise AnyCapError(f"{path}: not found; the paired test against the base needs each run's scores.jsonl")
    out: dict[str, list[dict[str, Any]]] = {}
    for lineno, row in read_jsonl(path):
        for key in ("task", "item_id", "dimension", "status"):
            if key not in row:
                raise InputError(f"{path}:{lineno}", key, "missing")
        out.setdefault(row["task"], []).append(row)
    return out


def _check_summary(path: Path, summary: dict[str, Any]) -> None:
    tasks = summary.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise InputError(str(path), "tasks", "missing or empty")
    for name, task in tasks.items():
        for key in ("average", "dimensions", "judge", "prompt_hash", "scorer"):
            if key not in task:
                raise InputError(str(path), f"tasks.{name}.{key}", "missing")


def discover(paths: list[Path]) -> list[Path]:
    """Run directories named on the command line; a folder holding run directories (e.g. `runs/`) stands
    for all of them, in name order."""
    found: list[Path] = []
    for path in paths:
        if (path / "summary.json").is_file() or (path / "manifest.json").is_file():
            found.append(path)
            continue
        children = sorted(p for p in path.glob("*") if (p / "summary.json").is_file()) if path.is_dir() else []
        if not children:
            raise AnyCapError(f"{path}: no summary.json here or in its sub-folders (not a finished run directory)")
        found.extend(children)
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def default_label(system: str) -> str:
    """A short row name from a system spec: paths shortened to their last component."""
    kind, sep, arg = system.partition(":")
    if sep and ("/" in arg or "\\" in arg):
        arg = Path(arg.rstrip("/\\")).name
    return f"{kind}{sep}{arg}"


def parse_labels(values: list[str] | None) -> dict[Path, str]:
    """`--label NAME=RUN_DIR` (repeatable) -> {resolved run dir: NAME}."""
    out: dict[Path, str] = {}
    for value in values or []:
        name, sep, where = value.partition("=")
        if not sep or not name.strip() or not where.strip():
            raise AnyCapError(f"--label {value!r}: expected NAME=RUN_DIR, e.g. --label 'GPT-4o=runs/gpt4o'")
        out[Path(where).resolve()] = name.strip()
    return out


def load_run(path: Path, label: str | None = None) -> Run:
    manifest = read_run_file(path / "manifest.json")
    if manifest.get("status") != "complete":
        raise InputError(str(path / "manifest.json"), "status",
                         f"{manifest.get('status')!r}: the run did not finish; re-run its command to complete it")
    summary = read_run_file(path / "summary.json")
    _check_summary(path / "summary.json", summary)
    system = str(summary.get("system") or manifest.get("system") or "")
    if not system:
        raise InputError(str(path / "summary.json"), "system", "missing")
    base = manifest.get("base")
    if base is not None and not isinstance(base, str):
        raise InputError(str(path / "manifest.json"), "base", "expected the base system's spec as a string")
    name = label or manifest.get("display_name") or default_label(system)
    return Run(path=path, label=str(name), system=system, base=base or None, manifest=manifest, summary=summary)


def load_runs(paths: list[Path], labels: dict[Path, str] | None = None) -> list[Run]:
    """Load every run; labels come from --label, else the manifest's display_name, else the system spec.
    Two runs with the same label get their directory name appended so rows stay distinguishable."""
    labels = dict(labels or {})
    dirs = discover(paths)
    resolved = {p.resolve() for p in dirs}
    unknown = [str(p) for p in labels if p not in resolved]
    if unknown:
        raise AnyCapError(f"--label names run directories that are not in the leaderboard: {', '.join(unknown)}")
    runs = [load_run(p, labels.get(p.resolve())) for p in dirs]
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.label] = counts.get(run.label, 0) + 1
    for run in runs:
        if counts[run.label] > 1:
            run.label = f"{run.label} [{run.path.name}]"
    return runs
