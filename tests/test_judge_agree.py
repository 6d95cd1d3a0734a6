"""judge-agree: the statistics against hand computations and scipy, and the command on runs made with
two loopback judges (real HTTP, the real OpenAI judge client) over three systems."""

import json
import re
import subprocess
import sys
import zlib

import numpy as np
import pytest
from conftest import cli_env
from loopback_server import LoopbackServer
from scipy import stats

import anycapeval
from anycapeval.agreement import cohen_kappa, kendall_tau_b, raw_agreement, weighted_kappa, within
from anycapeval.judge_agree import compare
from anycapeval.types import AnyCapError

TASKS = "demo_image_content,demo_image_style"


def test_kappa_by_hand():
    # 2x2 table: both 1 = 4, A only = 2, B only = 1, both 0 = 3 -> p_o = .7, p_e = .6*.5 + .4*.5 = .5, κ = .4
    a = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    b = [1, 1, 1, 1, 0, 0, 1, 0, 0, 0]
    assert raw_agreement(a, b) == pytest.approx(0.7)
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) is None  # chance agreement 1: κ is 0/0


def test_quadratic_kappa_by_hand():
    # one disagreement (3 vs 4, weight 1) among 5: Σw·O = 1/5; Σw·E = 23/5 (worked out per row of A)
    a, b = [0, 1, 2, 3, 4], [0, 1, 2, 4, 4]
    assert weighted_kappa(a, b, range(5), "quadratic") == pytest.approx(1 - 1 / 23)
    assert weighted_kappa(a, a, range(5), "quadratic") == pytest.approx(1.0)
    assert within([0, 2, 4], [1, 4, 4], 1) == pytest.approx(2 / 3)
    # unweighted κ through the same code equals the 2x2 formula
    assert weighted_kappa([1, 1, 0, 0], [1, 0, 0, 0], weights="none") == pytest.approx((0.75 - 0.5) / 0.5)


def test_kendall_tau_b_matches_scipy():
    rng = np.random.default_rng(3)
    for n in (3, 5, 12):
        x, y = rng.integers(0, 4, n).astype(float), rng.integers(0, 4, n).astype(float)  # with ties
        expected = stats.kendalltau(x, y, variant="b").statistic
        got = kendall_tau_b(x, y)
        assert (got is None and np.isnan(expected)) or got == pytest.approx(expected)
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


# -- runs judged by two loopback judges ------------------------------------------------------------------

def _text(body):
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content
                                                           if isinstance(p, dict))


def grade(body):
    """judge-a and judge-a2 grade alike; judge-b by another rule. Decisions depend on the prompt, so
    each system's captions get their own grades."""
    text, model = _text(body), body["model"]
    seed = zlib.crc32(text.encode())
    if "Requested style:" in text:
        score = seed % 5 if model != "judge-b" else (seed // 7) % 5
        return json.dumps({"score": score, "reason": "r"})
    n = len(re.findall(r"^\d+\. ", text.split("Caption under review")[0], flags=re.M))
    if model == "judge-b":
        decisions = [int(i <= 2) for i in range(1, n + 1)]
    else:
        decisions = [int((i + seed) % 2 == 0) for i in range(1, n + 1)]
    return json.dumps({"decisions": [{"key_point": i, "score": d, "reason": "r"}
                                     for i, d in enumerate(decisions, 1)]})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("agree")
    key = root / "key"
    key.write_text("test-key")
    cache = root / "c.db"
    out = {}
    with LoopbackServer(grade) as server:
        def run(model, judge, name):
            r = anycapeval.evaluate(model=model, tasks=TASKS, judge=f"openai:{judge}", output=root / name,
                                    judge_base_url=server.base_url, judge_key_file=str(key), cache_path=cache)
            assert r.exit_code == 0, r.messages
            return r.run_dir

        out["ref-a"] = run("reference", "judge-a", "ref-a")
        preds = [json.loads(line) for line in (out["ref-a"] / "predictions.jsonl").read_text().splitlines()]
        for name, edit in (("short", lambda c: c.split(". ")[0].rstrip(".") + "."),
                           ("long", lambda c: c + " Nothing else happens here.")):
            path = root / f"{name}.jsonl"
            path.write_text("".join(json.dumps({"task": p["task"], "id": p["item_id"], "caption": edit(p["caption"])})
                                    + "\n" for p in preds))
            out[f"{name}-a"] = run(f"predictions:{path}", "judge-a", f"{name}-a")
            out[f"{name}-b"] = run(f"predictions:{path}", "judge-b", f"{name}-b")
        out["ref-b"] = run("reference", "judge-b", "ref-b")
        out["ref-a2"] = run("reference", "judge-a2", "ref-a2")
    return out


def _judgments(run_dir, role):
    rows = [json.loads(line) for line in (run_dir / "judgments.jsonl").read_text().splitlines()]
    return {(r["task"], r["item_id"]): r["value"] for r in rows if r["role"] == role and r["status"] == "ok"}


def test_identical_judges_agree_perfectly(runs, tmp_path, isolated_cache):
    proc = subprocess.run([sys.executable, "-m", "anycapeval.cli", "judge-agree", str(runs["ref-a"]),
                           str(runs["ref-a2"]), "--output", str(tmp_path / "out")], capture_output=True, text=True,
                          env=cli_env(isolated_cache), timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out" / "judge_agree.json").read_text())
    assert report["judge_a"] == "openai:judge-a" and report["judge_b"] == "openai:judge-a2"
    assert report["key_points"]["all"]["kappa"] == pytest.approx(1.0)
    assert report["key_points"]["all"]["agreement"] == pytest.approx(1.0)
    assert report["style"]["all"]["kappa_quadratic"] == pytest.approx(1.0)
    assert report["style"]["all"]["exact"] == pytest.approx(1.0)
    assert all(d["delta"] == pytest.approx(0.0) for d in report["dimensions"])
    assert report["ranking"]["demo_image_content"]["kendall_tau_b"] is None  # one system only
    assert "Cohen's κ" in (tmp_path / "out" / "judge_agree.md").read_text()


def test_two_judges_three_systems(runs):
    report = compare([runs[k] for k in ("ref-a", "short-a", "long-a", "ref-b", "short-b", "long-b")])
    assert report["judge_a"] == "openai:judge-a" and len(report["runs"]) == 3

    # key points: the same numbers from the judgments files, with the 2x2 formula written out here
    a, b = [], []
    for system in ("ref", "short", "long"):
        ja, jb = _judgments(runs[f"{system}-a"], "content"), _judgments(runs[f"{system}-b"], "content")
        for key in ja:
            a += ja[key]
            b += jb[key]
    a, b = np.array(a), np.array(b)
    po = (a == b).mean()
    pe = a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean())
    kp = report["key_points"]["all"]
    assert kp["n_key_points"] == len(a) > 0 and kp["agreement"] == pytest.approx(po)
    assert kp["kappa"] == pytest.approx((po - pe) / (1 - pe))
    assert kp["kappa"] < 0.9

    ga, gb = [], []
    for system in ("ref", "short", "long"):
        sa, sb = _judgments(runs[f"{system}-a"], "style"), _judgments(runs[f"{system}-b"], "style")
        ga += [sa[k] for k in sa]
        gb += [sb[k] for k in sa]
    st = report["style"]["all"]
    assert st["n_items"] == 24
    assert st["exact"] == pytest.approx(np.mean(np.array(ga) == np.array(gb)))
    assert st["within_1"] == pytest.approx(np.mean(np.abs(np.array(ga) - np.array(gb)) <= 1))

    # Δ per dimension: B − A of the summaries' own values, with a CI around it
    summary = {k: json.loads((runs[k] / "summary.json").read_text()) for k in runs}
    row = next(d for d in report["dimensions"] if d["system"] == "reference" and d["task"] == "demo_image_style"
               and d["dimension"] == "Avg")
    want = (summary["ref-b"]["tasks"]["demo_image_style"]["average"]["style_score"]["value"]
            - summary["ref-a"]["tasks"]["demo_image_style"]["average"]["style_score"]["value"])
    assert row["delta"] == pytest.approx(want) and row["n"] == 8
    assert row["ci"][0] <= row["delta"] <= row["ci"][1]
    assert {d["metric"] for d in report["dimensions"]} == {"kpd", "style_score"}

    # ranking: Kendall τ-b over the three systems' task averages, as scipy computes it
    rank = report["ranking"]["demo_image_content"]
    va = [summary[f"{s}-a"]["tasks"]["demo_image_content"]["average"]["kpd"]["value"] for s in ("ref", "short", "long")]
    vb = [summary[f"{s}-b"]["tasks"]["demo_image_content"]["average"]["kpd"]["value"] for s in ("ref", "short", "long")]
    assert rank["n_systems"] == 3
    assert rank["kendall_tau_b"] == pytest.approx(stats.kendalltau(va, vb).statistic)


def test_mismatched_runs_say_what_to_do(runs):
    with pytest.raises(AnyCapError, match="two judges; these runs were judged by 3"):
        compare([runs["ref-a"], runs["ref-b"], runs["ref-a2"]])
    with pytest.raises(AnyCapError, match="no system was judged by both"):
        compare([runs["ref-a"], runs["short-b"]])
