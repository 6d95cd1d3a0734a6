"""Shared fixtures: an isolated cache per test session, a judge-shaped loopback responder."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Demo media is generated once per session; every test gets its own SQLite cache via --cache
    or this environment variable."""
    root = tmp_path_factory.getbasetemp() / "anycapeval-cache"
    monkeypatch.setenv("ANYCAPEVAL_CACHE_DIR", str(root))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANYCAPEVAL_DATA_DIR", raising=False)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # no test reaches the Hub, also in subprocesses
        monkeypatch.setenv(name, "1")
    return root


def judge_answer(body: dict, score_for: int = 1) -> str:
    """A valid answer to one of our judge prompts: one decision per numbered key point, or a style score."""
    text = "".join(part.get("text", "") for part in body["messages"][0]["content"]
                   if isinstance(part, dict)) if isinstance(body["messages"][0]["content"], list) \
        else body["messages"][0]["content"]
    if "Requested style:" in text:
        return json.dumps({"score": 3, "reason": "fine"})
    block = text.split("Caption under review")[0]
    n = len(re.findall(r"^\d+\. ", block, flags=re.M))
    return json.dumps({"decisions": [{"key_point": i, "score": score_for, "reason": "r"} for i in range(1, n + 1)]})


def cli_env(cache_root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update({"ANYCAPEVAL_CACHE_DIR": str(cache_root), "COLUMNS": "160", **extra})
    return env
