"""The Python API: evaluate() is the CLI's path, frames match summary.json, docs/python.md runs as written."""

import json
import re
import subprocess
import sys

import anycapeval.leaderboard
import pandas as pd
import pytest
from conftest import REPO, cli_env

import anycapeval

TASKS = "demo_image_content,demo_image_style"


def test_evaluate_equals_the_cli_and_frames_follow_summary(tmp_path, isolated_cache):
    api = anycapeval.evaluate(model="reference", tasks=TASKS.split(","), judge="fake:perfect",
                              output=tmp_path / "api", cache_path=tmp_path / "c.db")
    proc = subprocess.run([sys.executable, "-m", "anycapeval.cli", "run", "--model", "reference", "--tasks", TASKS,
                           "--judge", "fake:perfect", "--output", str(tmp_path / "cli"), "--cache",
                           str(tmp_path / "c.db")], capture_output=True, text=True, env=cli_env(isolated_cache),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    cli = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert cli == api.summary == json.loads((tmp_path / "api" / "summary.json").read_text())
    assert api.exit_code == 0 and api.run_dir == tmp_path / "api"

    df = api.to_pandas()
    tasks = api.summary["tasks"]
    expected_rows = sum((len(t["dimensions"]) + 1) * 3 for t in tasks.values())  # 3 metrics per cell, plus average
    assert df.shape == (expected_rows, 12)
    row = df[(df.task == "demo_image_content") & (df.dimension == "IPos") & (df.metric == "kpd")].iloc[0]
    cell = tasks["demo_image_content"]["dimensions"]["IPos"]
    assert row.value == pytest.approx(cell["kpd"]["value"]) and row.n == cell["n"]
    assert [row.ci_low, row.ci_high] == pytest.approx(cell["kpd"]["ci"])
    avg = df[(df.task == "demo_image_style") & (df.dimension == "average") & (df.metric == "style_score")]
    assert avg.value.item() == pytest.approx(3.0)  # fake:perfect grades 3

    items = api.scores_frame()
    assert len(items) == 16 and set(items.status) == {"ok"}
    assert (items[items.task == "demo_image_content"].matched == items[items.task == "demo_image_content"]
            .key_points).all()
    loaded = anycapeval.load_run(tmp_path / "cli")
    pd.testing.assert_frame_equal(loaded.to_pandas(), df)


def test_errors_say_what_to_do(tmp_path):
    with pytest.raises(anycapeval.api.AnyCapError, match="the options are: .*data_dir"):
        anycapeval.evaluate(model="reference", tasks="demo", judgee="fake:perfect")
    with pytest.raises(anycapeval.api.AnyCapError, match="finished run directory"):
        anycapeval.load_run(tmp_path)


def test_judge_errors_give_exit_code_3_not_an_exception(tmp_path):
    r = anycapeval.evaluate(model="reference", tasks="demo_image_style", judge="fake:fail", output=tmp_path / "r",
                            cache_path=tmp_path / "c.db")
    assert r.exit_code == 3 and r.messages
    assert anycapeval.load_run(tmp_path / "r").exit_code == 3
    assert r.to_pandas().value.isna().all()


def test_leaderboard_frame_matches_the_csv(tmp_path):
    runs = [anycapeval.evaluate(model="reference", tasks="demo_image_style", judge=j, output=tmp_path / j[5:],
                                cache_path=tmp_path / "c.db") for j in ("fake:perfect", "fake:zero")]
    board = anycapeval.leaderboard.build(runs)
    from anycapeval.leaderboard.files import build as build_files

    build_files([r.run_dir for r in runs], tmp_path / "board", html=False)
    csv = pd.read_csv(tmp_path / "board" / "leaderboard.csv")
    assert list(board.columns) == list(csv.columns) and len(board) == len(csv) > 0
    assert board.value.astype(float).tolist() == pytest.approx(csv.value.tolist())
    avg = board[(board.column == "Avg") & (board.metric == "style_score")].set_index("judge").value
    assert avg["fake:perfect"] == pytest.approx(3.0) and avg["fake:zero"] == pytest.approx(0.0)


def test_import_is_light():
    code = "import sys, anycapeval; assert 'torch' not in sys.modules and 'pandas' not in sys.modules; " \
           "anycapeval.evaluate; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.slow
def test_docs_python_example_runs(tmp_path, isolated_cache):
    text = (REPO / "docs" / "python.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    script = tmp_path / "example.py"
    script.write_text("\n".join(blocks))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          env=cli_env(isolated_cache, HF_HUB_OFFLINE="1"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "runs" / "py-short" / "summary.json").is_file()
    assert "rank" in proc.stdout and "key_points" in proc.stdout
