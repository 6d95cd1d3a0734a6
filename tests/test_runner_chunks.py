"""A task run in chunks (runner.CHUNK_ITEMS) writes the same files as one run in a single chunk, and a
run that fails midway leaves no row file, finished or temporary, in the run directory."""

import json

import pytest

from anycapeval import runner as runner_mod
from anycapeval.rowsink import RowTally, served_models
from anycapeval.runner import RunOptions, run

FILES = ("predictions.jsonl", "judgments.jsonl", "scores.jsonl", "summary.json", "summary.md")


def _run(tmp_path, name, monkeypatch, chunk, tasks="demo_image_content,demo_video_style"):
    monkeypatch.setattr(runner_mod, "CHUNK_ITEMS", chunk)
    return run(RunOptions(model="reference", tasks=tasks, judge="fake:perfect", output=tmp_path / name,
                          cache_path=tmp_path / f"{name}.sqlite"))


def test_chunked_run_writes_the_same_files(tmp_path, isolated_cache, monkeypatch):
    whole = _run(tmp_path, "whole", monkeypatch, 100_000)
    for chunk in (1, 3):
        chunked = _run(tmp_path, f"chunk{chunk}", monkeypatch, chunk)
        assert chunked.summary == whole.summary
        for name in FILES:
            assert (tmp_path / f"chunk{chunk}" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
        assert sorted(p.name for p in (tmp_path / f"chunk{chunk}").iterdir()) == \
            sorted(p.name for p in (tmp_path / "whole").iterdir())


def test_a_failed_run_leaves_no_row_files(tmp_path, isolated_cache, monkeypatch):
    calls = []
    real = runner_mod.Runner.judge_rounds

    async def judge_then_fail(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the third chunk: rows of two chunks are in the temporary files by now
            raise RuntimeError("killed")
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(runner_mod.Runner, "judge_rounds", judge_then_fail)
    with pytest.raises(RuntimeError, match="killed"):
        _run(tmp_path, "run", monkeypatch, 2)
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["manifest.json"]  # no row file, no .tmp
    monkeypatch.setattr(runner_mod.Runner, "judge_rounds", real)
    resumed = _run(tmp_path, "run", monkeypatch, 2)
    assert resumed.exit_code == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == sum(t["average"]["n"] for t in resumed.summary["tasks"].values())


def test_row_tally_equals_the_row_functions():
    predictions = [{"system": "openai:a", "served_model": "a-1", "usage": {"prompt_tokens": 3}, "status": "ok"},
                   {"system": "openai:a", "served_model": "a-2", "usage": {}, "status": "generation_error"}]
    judgments = [{"judge": "openai:gpt-4o", "served_model": m, "usage": {"prompt_tokens": 5, "completion_tokens": 1},
                  "status": "ok", "media_sent": "none", "notes": []} for m in ("g-2", "g-1", "g-2")]
    first, second = RowTally(), RowTally()
    first.add_predictions(predictions[:1])
    first.add_judgments(judgments[:1])
    second.add_predictions(predictions[1:])
    second.add_judgments(judgments[1:])
    first.merge(second)
    assert first.served_models() == served_models(predictions, judgments)
    assert json.dumps(first.served_models()) == json.dumps(served_models(predictions, judgments))  # key order too
    from anycapeval.cost import actual_cost

    assert first.cost.result() == actual_cost(predictions, judgments)
    assert list(first.served_any) == ["g-2", "g-1"] and first.generation_failed == 1
