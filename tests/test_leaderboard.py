"""The leaderboard built from run directories that these tests make with the real CLI.

Runs (module-scoped, made once): a reference run with the offline judge, three predictions runs with
the fake judge (a base with one missing caption, another system, and a refined system whose manifest
names the base), and a run labelled "GPT-4o" on the AnyCapEval image tasks over a tiny data folder in
the official layout, so the paper's numbers are linked.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from anycapeval.leaderboard.files import build
from anycapeval.leaderboard.paired import AVG, paired_bootstrap, ratios_for
from conftest import cli_env

from anycapeval.scorers import get_scorer
from anycapeval.types import Score

DEMO = Path(__file__).resolve().parents[1] / "anycapeval" / "demo" / "data"
DIGITS = {"kpd": 2, "style_score": 2, "judge_score_uncapped": 2, "keypoint_recall": 3, "length_compliance": 3}


def cli(args: list[str], cache: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "anycapeval.cli", *args], capture_output=True, text=True,
                          env=cli_env(cache), cwd=cwd, timeout=600)


def _references() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted(DEMO.glob("*/*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            out.append((path.stem, str(record["id"]), record["conversations"][1]["value"]))
    return out


def _write_predictions(path: Path, caption_for: Any) -> None:
    lines = []
    for task, item_id, ref in _references():
        caption = caption_for(task, item_id, ref)
        if caption is not None:
            lines.append(json.dumps({"id": int(item_id), "task": task, "caption": caption}))
    path.write_text("\n".join(lines) + "\n")


def _first_words(text: str, share: float) -> str:
    words = text.split()
    return " ".join(words[:max(3, int(len(words) * share))])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lb")
    cache = root / "cache"
    _write_predictions(root / "base.jsonl", lambda t, i, r: None if (t, i) == ("demo_image_content", "3")
                       else _first_words(r, 0.5))
    _write_predictions(root / "other.jsonl", lambda t, i, r: r + " It shows a few things.")
    _write_predictions(root / "refined.jsonl", lambda t, i, r: r if int(i) % 3 else _first_words(r, 0.7))
    # A tiny data folder in the official AnyCapEval layout (demo items under the official file names).
    data = root / "data" / "image"
    data.mkdir(parents=True)
    shutil.copy(DEMO / "image" / "demo_image_content.jsonl", data / "anycapeval_image_ref_content.jsonl")
    shutil.copy(DEMO / "image" / "demo_image_style.jsonl", data / "anycapeval_image_ref_style.jsonl")
    commands = {
        "ref": ["--model", "reference", "--tasks", "demo"],  # the offline judge (the default)
        "base": ["--model", f"predictions:{root / 'base.jsonl'}", "--tasks", "demo", "--judge", "fake:perfect",
                 "--max-generation-error-rate", "0.1"],  # one caption is missing on purpose
        "other": ["--model", f"predictions:{root / 'other.jsonl'}", "--tasks", "demo", "--judge", "fake:perfect"],
        "refined": ["--model", f"predictions:{root / 'refined.jsonl'}", "--tasks", "demo", "--judge", "fake:perfect"],
        "gpt4o": ["--model", "reference", "--tasks", "anycapeval_image", "--data-dir", str(root / "data"),
                  "--judge", "fake:perfect"],
    }
    out = {}
    for name, args in commands.items():
        result = cli(["run", *args, "--output", str(root / name)], cache, root)
        assert result.returncode == 0, result.stderr
        out[name] = root / name
    # Training an ACM checkpoint here would cost minutes, so the refined run is a predictions run marked
    # the way `anycapeval run --model acm:DIR --base SYSTEM` records its base (manifest key `base` = the
    # base's spec; that acm: runs write it is tested in test_acm_train.py).
    manifest_path = out["refined"] / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["base"] = json.loads((out["base"] / "summary.json").read_text())["system"]
    manifest_path.write_text(json.dumps(manifest))
    return out


@pytest.fixture(scope="module")
def board(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("board")
    result = cli(["leaderboard", *(str(p) for p in runs.values()), "--output", str(out), "--no-html",
                  "--label", f"GPT-4o={runs['gpt4o']}", "--label", f"my base={runs['base']}"],
                 out / "cache", out)
    assert result.returncode == 0, result.stderr
    assert "leaderboard: 5 runs, 8 tables" in result.stdout
    return out


def summaries(runs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {name: json.loads((path / "summary.json").read_text()) for name, path in runs.items()}


def label_to_run(runs: dict[str, Path]) -> dict[str, str]:
    return {"reference": "ref", "predictions:other.jsonl": "other", "predictions:refined.jsonl": "refined",
            "my base": "base", "GPT-4o": "gpt4o"}


def md_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """{task: [row dicts by header]} from leaderboard.md."""
    tables: dict[str, list[dict[str, str]]] = {}
    task, head = None, None
    for line in text.splitlines():
        if line.startswith("## ") and line != "## Runs":
            task, head = line[3:].split(" (")[0], None
        elif line.startswith("| ") and task:
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if head is None:
                head = cells
            else:
                tables.setdefault(task, []).append(dict(zip(head, cells)))
    return tables


def expected_cell(entry: dict[str, Any], metric: str, with_n: bool) -> str:
    d = DIGITS[metric]
    m = entry[metric]
    text = f"{m['value']:.{d}f} [{m['ci'][0]:.{d}f}, {m['ci'][1]:.{d}f}]"
    if with_n:
        text += f" n={entry['n']}"
        failed = entry["n_judge_error"] + entry["n_generation_error"]
        text += f" (+{failed} failed)" if failed else ""
    return text


LABELS = {"keypoint_recall": "recall", "length_compliance": "len ok", "judge_score_uncapped": "uncapped"}


def test_markdown_numbers_equal_the_summaries(runs, board):
    sums, names = summaries(runs), label_to_run(runs)
    tables = md_tables((board / "leaderboard.md").read_text())
    assert set(tables) == {t for s in sums.values() for t in s["tasks"]}
    checked = 0
    for task, rows in tables.items():
        current = None
        for row in rows:
            label = row["system"]
            if label.startswith("↳ Δ vs "):
                base = sums[names[label[len("↳ Δ vs "):].split(" (paired")[0]]]["tasks"][task]
                mine = sums[names[current]]["tasks"][task]
                for dim in mine["dimensions"]:
                    metric = "kpd" if "kpd" in mine["average"] else "style_score"
                    delta = mine["dimensions"][dim][metric]["value"] - base["dimensions"][dim][metric]["value"]
                    assert row[dim].startswith(f"{delta:+.2f}"), (task, dim, row[dim])
                    checked += 1
                continue
            if label.startswith("↳"):
                continue
            current = label
            summary = sums[names[label]]["tasks"][task]
            main = "kpd" if "kpd" in summary["average"] else "style_score"
            for dim, entry in summary["dimensions"].items():
                assert row[dim] == expected_cell(entry, main, True), (task, label, dim)
                checked += 1
            assert row["Avg"] == expected_cell(summary["average"], main, True)
            for metric, column in LABELS.items():
                if metric in summary["average"]:
                    assert row[column] == expected_cell(summary["average"], metric, False)
                    checked += 1
            assert [row["n"], row["judge err"], row["gen err"], row["skipped"]] == [
                str(summary["average"][k]) for k in ("n", "n_judge_error", "n_generation_error", "n_skipped")]
            assert (row["judge"], row["prompt"]) == (summary["judge"], summary["prompt_hash"])
    assert checked > 150
    base_row = next(r for r in tables["demo_image_content"] if r["system"] == "my base")
    assert base_row["gen err"] == "1" and "(+1 failed)" in base_row["IApp"]


def test_csv_numbers_equal_the_summaries(runs, board):
    sums = summaries(runs)
    by_dir = {str(path): name for name, path in runs.items()}
    with (board / "leaderboard.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) > 150
    for row in rows:
        task = sums[by_dir[row["run_dir"]]]["tasks"][row["task"]]
        entry = task["dimensions"][row["column"]] if row["column_kind"] == "dim" else task["average"]
        metric = entry[row["metric"]]
        assert float(row["value"]) == metric["value"]
        assert [float(row["ci_low"]), float(row["ci_high"])] == metric["ci"]
        assert int(row["n"]) == entry["n"] and int(row["n_judge_error"]) == entry["n_judge_error"]
        assert int(row["n_generation_error"]) == entry["n_generation_error"]
        assert (row["judge"], row["prompt_hash"]) == (task["judge"], task["prompt_hash"])
        if row["delta"]:
            base = sums["base"]["tasks"][row["task"]]
            base_entry = base["dimensions"][row["column"]] if row["column_kind"] == "dim" else base["average"]
            assert float(row["delta"]) == metric["value"] - base_entry[row["metric"]]["value"]
            gain = float(row["delta"]) / base_entry[row["metric"]]["value"]
            assert float(row["relative_gain"]) == pytest.approx(gain)
    refined = [r for r in rows if r["system"] == "predictions:refined.jsonl"]
    assert refined and all(r["base"] == "my base" and r["delta"] for r in refined)


def _scores(rows: list[dict[str, Any]]) -> list[Score]:
    return [Score(r["task"], r["item_id"], r["dimension"], r["status"], metrics=r["metrics"]) for r in rows]


def test_paired_bootstrap_recomputes_the_scorer_aggregate_on_shared_items(runs):
    board = build(list(runs.values()), runs["ref"].parent / "board-api", html=False)
    refined_rows = {t.task: next(r for r in t.rows if r.run.path == runs["refined"]) for t in board.tables
                    if t.task.startswith("demo")}
    for task, row in refined_rows.items():
        assert row.base_row is not None and row.base_row.run.path == runs["base"]
        mine, theirs = row.run.scores(task), row.base_row.run.scores(task)
        ok_base = {r["item_id"] for r in theirs if r["status"] == "ok"}
        shared = {r["item_id"] for r in mine if r["status"] == "ok"} & ok_base
        scorer = get_scorer(row.task["scorer"], "default", row.task["modality"])
        dims = list(row.task["dimensions"])
        a = scorer.aggregate(_scores([r for r in mine if r["item_id"] in shared]), dims)
        b = scorer.aggregate(_scores([r for r in theirs if r["item_id"] in shared]), dims)
        main = "kpd" if row.task["scorer"] == "kpd" else "style_score"
        assert row.cells[AVG].paired is not None
        assert row.cells[AVG].paired.n_shared == len(shared)
        assert row.cells[AVG].paired.delta == pytest.approx(a["average"][main]["value"] - b["average"][main]["value"])
        if len(shared) == row.task["average"]["n"]:  # nothing failed: the test's delta is the table's delta
            assert row.cells[AVG].paired.delta == pytest.approx(row.cells[AVG].delta)
    # the base lost one image-content caption: the paired test uses the 7 shared items
    assert refined_rows["demo_image_content"].cells[AVG].paired.n_shared == 7


def test_paired_bootstrap_significance_and_identity():
    rows = [{"item_id": str(i), "dimension": d, "status": "ok",
             "metrics": {"style_score": 3 if i % 2 else 2, "judge_score": 3, "length_ok": True}}
            for i, d in enumerate(["Brf", "Det"] * 20)]
    ratios = ratios_for({"scorer": "style_rubric", "protocol": "default", "modality": "image"})
    same = paired_bootstrap(rows, rows, ratios)[(AVG, "style_score")]
    assert same.delta == 0 and same.ci == (0.0, 0.0) and not same.significant and same.p_value == 1.0
    better = [{**r, "metrics": {**r["metrics"], "style_score": r["metrics"]["style_score"] + (i % 3 == 0)}}
              for i, r in enumerate(rows)]
    test = paired_bootstrap(better, rows, ratios)[(AVG, "style_score")]
    expected = np.mean([np.mean([i % 3 == 0 for i in range(40) if i % 2 == k]) for k in (0, 1)])
    assert test.delta == pytest.approx(expected) and test.significant and test.p_value < 0.05
    assert test.ci[0] > 0 and test.n_shared == 40
    again = paired_bootstrap(better, rows, ratios)[(AVG, "style_score")]
    assert again == test  # the seed of anycapeval.stats: reproducible


def test_mixed_setups_are_marked_and_ranked_apart(board):
    text = (board / "leaderboard.md").read_text()
    tables = md_tables(text)
    rows = [r for r in tables["demo_video_style"] if not r["system"].startswith("↳")]
    ranks = {r["system"]: r["#"] for r in rows}
    assert ranks["reference"] == "B1"  # the only offline-judged row: its own setup, its own ranking
    assert all(v.startswith("A") for k, v in ranks.items() if k != "reference")
    section = text.split("## demo_video_style")[1].split("## ")[0]
    assert "Mixed setups" in section and "OFFLINE APPROXIMATION" in section
    assert "Setup B: judge `offline:minilm-v3`" in section
    # the GPT-4o run is the only one on the AnyCapEval tasks: one setup, plain ranks, no mark
    section = text.split("## anycapeval_image_content")[1].split("## ")[0]
    assert "Mixed setups" not in section and "| 1 | GPT-4o |" in section


def test_paper_numbers_beside_mapped_rows(runs, board):
    text = (board / "leaderboard.md").read_text()
    rows = md_tables(text)["anycapeval_image_content"]
    assert [r["system"] for r in rows] == ["GPT-4o", "↳ paper: GPT-4o"]
    ours = json.loads((runs["gpt4o"] / "summary.json").read_text())["tasks"]["anycapeval_image_content"]
    paper_ipos = 1.55  # AnyCapEval image content, GPT-4o, IPos (the paper's table)
    assert rows[1]["IPos"] == f"1.55 (diff {ours['dimensions']['IPos']['kpd']['value'] - paper_ipos:+.2f})"
    assert rows[1]["Avg"].startswith("2.89 (diff ")
    with (board / "leaderboard.csv").open() as f:
        paper = [r for r in csv.DictReader(f) if r["task"] == "anycapeval_image_style" and r["column"] == "Avg"]
    assert paper[0]["paper_system"] == "GPT-4o" and float(paper[0]["paper_value"]) == 2.26
    assert float(paper[0]["paper_diff"]) == pytest.approx(float(paper[0]["value"]) - 2.26)
    assert "line 71" in paper[0]["paper_source"]
    # demo tasks are not the paper's benchmark: no paper row even for a run labelled with a paper name
    assert "↳ paper" not in text.split("## demo_image_content")[1].split("## ")[0]


def test_a_new_scorer_renders_from_its_summary(runs, tmp_path):
    """Tasks of scorers this module knows nothing about (here a MIA-Bench-shaped summary entry, as the
    `mia` scorer writes it) become tables from their `dimensions` and `average` alone."""
    run = tmp_path / "mia-run"
    shutil.copytree(runs["gpt4o"], run)
    summary = json.loads((run / "summary.json").read_text())

    def m(v: float) -> dict[str, Any]:
        return {"value": v, "ci": [v - 1.5, v + 1.5]}

    counts = {"n": 40, "n_judge_error": 1, "n_generation_error": 0, "n_skipped": 0}
    summary["tasks"]["mia_bench"] = {
        "task_version": "1.0", "modality": "image", "aspect": "instruction following", "scorer": "mia",
        "protocol": "default", "judge": "openai:gpt-4o-2024-08-06", "judge_is_approximation": False,
        "prompt_hash": "abc123", "dimensions": {"describe": {"score": m(88.25), **counts},
                                                "mention": {"score": m(80.0), **counts}},
        "average": {"score": m(84.125), "weighted": m(83.0), **counts}}
    (run / "summary.json").write_text(json.dumps(summary))
    board = build([run], tmp_path / "out", labels={run.resolve(): "GPT-4o"}, html=False)
    text = (tmp_path / "out" / "leaderboard.md").read_text()
    rows = md_tables(text)["mia_bench"]
    assert rows[0]["describe"] == "88.2 [86.8, 89.8] n=40 (+1 failed)"  # 0-100 scale: one decimal
    assert rows[0]["Avg"] == "84.1 [82.6, 85.6] n=40 (+1 failed)" and rows[0]["weighted"] == "83.0 [81.5, 84.5]"
    assert rows[1]["system"] == "↳ paper: GPT-4o" and rows[1]["describe"] == "90.3 (diff -2.0)"
    table = next(t for t in board.tables if t.task == "mia_bench")
    assert [c.key for c in table.columns] == ["describe", "mention", AVG, "weighted"]


def test_refined_run_without_its_base_says_so(runs, tmp_path):
    board = build([runs["refined"]], tmp_path / "out", html=False)
    row = board.tables[0].rows[0]
    assert row.base_row is None and "predictions:base.jsonl is not among the runs" in row.base_note
    assert "is not among the runs: no delta" in (tmp_path / "out" / "leaderboard.md").read_text()


def test_bad_input_is_named(runs, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli(["leaderboard", str(empty), "--output", str(tmp_path / "o")], tmp_path / "c", tmp_path)
    assert result.returncode == 2 and "no summary.json" in result.stderr
    result = cli(["leaderboard", str(runs["base"]), "--label", "oops", "--output", str(tmp_path / "o")],
                 tmp_path / "c", tmp_path)
    assert result.returncode == 2 and "NAME=RUN_DIR" in result.stderr
    broken = tmp_path / "broken"
    shutil.copytree(runs["base"], broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    (broken / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    result = cli(["leaderboard", str(broken), "--output", str(tmp_path / "o")], tmp_path / "c", tmp_path)
    assert result.returncode == 2 and re.search(r"manifest\.json: field 'status'", result.stderr)
    assert not (tmp_path / "o" / "leaderboard.md").exists()
