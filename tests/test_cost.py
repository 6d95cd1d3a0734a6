"""Cost: `--dry-run` calls nothing and counts what a run would ask, `--max-cost` refuses before any request,
and a finished run's summary prices the usage the server reported (tests/strict_openai.py stands in)."""

from __future__ import annotations

import csv
import json
import math

from PIL import Image
from strict_openai import StrictOpenAI
from test_providers import official_data, plain_answer, text_of

from anycapeval.cli import main
from anycapeval.cost import image_tokens, price_for, usage_usd
from anycapeval.dryrun import plan
from anycapeval.runner import RunOptions, run


def test_tile_rule_by_hand():
    assert image_tokens(1024, 1024) == 85 + 170 * 4  # -> 768x768: 2x2 tiles
    assert image_tokens(2048, 4096) == 85 + 170 * 6  # -> 1024x2048 -> 768x1536: 2x3 tiles
    assert image_tokens(4096, 8192, "low") == 85
    assert image_tokens(300, 200) == 85 + 170  # small images are not scaled up: one tile


def test_cached_tokens_are_priced_at_the_cached_rate():
    price = price_for("openai:gpt-4o-mini")
    assert price and price["input"] == 0.15 and price["cached_input"] == 0.075 and price["output"] == 0.6
    usage = {"prompt_tokens": 1000, "cached_tokens": 400, "completion_tokens": 100, "reasoning_tokens": 60}
    assert math.isclose(usage_usd(usage, price), (600 * 0.15 + 400 * 0.075 + 100 * 0.6) / 1e6)
    assert price_for("openai:my-local-model") is None and price_for("azure:judge-dep") is None


def _options(server, tmp_path, data, media, **kw):
    base = dict(model="reference", tasks="anycapeval_image_style", data_dir=str(data), media_dir=str(media),
                judge="openai:gpt-4o-2024-08-06", judge_base_url=server.base_url, cache_path=tmp_path / "c.db",
                output=tmp_path / "run", limit=1, judge_options={"retry_base_s": 0.01})
    base.update(kw)
    return RunOptions(**base)


def test_dry_run_counts_then_a_real_run_matches_and_a_second_dry_run_is_empty(tmp_path):
    data, media = official_data(tmp_path)
    first = json.loads((data / "image" / "anycapeval_image_ref_style.jsonl").read_text().splitlines()[0])
    for path in media.rglob(first["image"]):  # one image of a known size
        Image.new("RGB", (1500, 1000), "gray").save(path)
    with StrictOpenAI() as server:  # answers from the role's JSON schema
        [line] = plan(_options(server, tmp_path, data, media))
        assert server.request_count == 0
        assert (line.role, line.spec, line.requests, line.cached) == ("style", "openai:gpt-4o-2024-08-06", 1, 0)
        assert line.output_budget == 1024  # the judge's max_tokens

        result = run(_options(server, tmp_path, data, media))
        assert result.exit_code == 0 and server.request_count == 1
        [body] = server.requests
        # hand computation: 1500x1000 is sent shrunk to 1024x683 -> no 768 step (683 < 768) -> 2x2 tiles
        assert line.input_tokens == math.ceil(len(text_of(body)) / 4) + 85 + 170 * 4
        assert math.isclose(line.prices()["usd"], (line.input_tokens * 2.5 + 1024 * 10.0) / 1e6)

        again = plan(_options(server, tmp_path, data, media))
        assert [(x.requests, x.cached) for x in again] == [(0, 1)] and server.request_count == 1

    # the summary's cost is the recorded usage at the table's gpt-4o-2024-08-06 rates
    [row] = [json.loads(x) for x in (tmp_path / "run" / "judgments.jsonl").read_text().splitlines()]
    usage = row["usage"]
    expected = ((usage["prompt_tokens"] - usage.get("cached_tokens", 0)) * 2.5 + usage.get("cached_tokens", 0) * 1.25
                + usage["completion_tokens"] * 10.0) / 1e6
    cost = json.loads((tmp_path / "run" / "summary.json").read_text())["cost"]
    judge = cost["judges"]["openai:gpt-4o-2024-08-06"]
    assert judge["requests"] == 1 and judge["prompt_tokens"] == usage["prompt_tokens"] > 0
    assert math.isclose(judge["usd"], expected) and math.isclose(cost["usd"], expected)
    assert "openai:gpt-4o-2024-08-06: 1 requests" in (tmp_path / "run" / "summary.md").read_text()
    assert main(["leaderboard", str(tmp_path / "run"), "--output", str(tmp_path / "board"), "--no-html",
                 "--no-paper", "--resamples", "10"]) == 0
    board = next((tmp_path / "board").glob("*.md")).read_text()
    assert f"${expected:,.4f}" in board and "| cost |" in board
    with (tmp_path / "board" / "leaderboard.csv").open() as fh:
        assert {math.isclose(float(r["cost_usd"]), expected) for r in csv.DictReader(fh)} == {True}


def test_dry_run_of_the_demo_tasks_with_an_api_system_reaches_no_server(tmp_path, isolated_cache, capsys):
    with StrictOpenAI(plain_answer) as server:
        code = main(["run", "--model", "openai:gpt-4.1-mini", "--model-args", f"base_url={server.base_url}",
                     "--tasks", "demo", "--judge", "openai", "--judge-base-url", server.base_url, "--dry-run"])
        assert code == 0 and server.request_count == 0
    printed = capsys.readouterr().out
    assert "ESTIMATE" in printed and "generate" in printed and "prompts estimated with the reference caption" in printed
    assert "total: 96 requests" in printed  # 6 demo tasks x 8 items: 48 captions + 48 judgments
    blocks = printed.split("\n")
    generate = [blocks[n + 1] for n, b in enumerate(blocks) if "  generate  openai:gpt-4.1-mini" in b]
    assert len(generate) == 6 and all("8 requests (0 cached)" in b and "est. $" in b for b in generate)


def test_max_cost_refuses_before_any_request(tmp_path, isolated_cache, capsys):
    data, media = official_data(tmp_path)
    with StrictOpenAI(plain_answer) as server:
        code = main(["run", "--model", "reference", "--tasks", "anycapeval_image_style", "--data-dir", str(data),
                     "--media-dir", str(media), "--judge", "openai", "--judge-base-url", server.base_url,
                     "--max-cost", "0.0001", "--output", str(tmp_path / "run")])
        assert code == 2 and server.request_count == 0
    err = capsys.readouterr().err
    assert "--max-cost" in err and "estimated cost" in err and "--limit" in err
    assert not (tmp_path / "run").exists()
