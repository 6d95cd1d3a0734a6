"""mypy over the whole installed package. `acm/` and `leaderboard/` are mapped into `anycapeval` by
pyproject's package-dir, which mypy cannot follow; so check a temporary copy laid out as installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"acm": "acm", "leaderboard": "leaderboard", "tasks": "tasks", "references": "references"}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "anycapeval"
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
        shutil.copytree(ROOT / "anycapeval", package, ignore=ignore)
        for name, folder in MAPPED.items():
            shutil.copytree(ROOT / folder, package / name, ignore=ignore)
        config = ["--python-version", "3.11", "--ignore-missing-imports"]
        return subprocess.call([sys.executable, "-m", "mypy", *config, "anycapeval"], cwd=tmp)


if __name__ == "__main__":
    sys.exit(main())
