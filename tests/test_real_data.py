"""The whole AnyCapEval reference set through the offline judge (skipped without ../shared/data)."""

import json

import pytest
from conftest import SHARED_DATA

from anycapeval.runner import RunOptions, run

DATA = SHARED_DATA / "anycapeval"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/anycapeval not present")


def test_reference_on_all_of_anycapeval_with_the_offline_judge(tmp_path):
    result = run(RunOptions(model="reference", tasks="anycapeval", data_dir=str(DATA),
                            cache_path=tmp_path / "c.db", output=tmp_path / "run"))
    assert result.exit_code == 0
    tasks = result.summary["tasks"]
    total = sum(t["average"][k] for t in tasks.values() for k in ("n", "n_judge_error", "n_generation_error",
                                                                    "n_skipped"))
    assert total == 1134
    assert sum(t["average"]["n_judge_error"] + t["average"]["n_generation_error"] for t in tasks.values()) == 0
    assert tasks["anycapeval_audio_content"]["average"]["n_skipped"] == 1  # id 27 has no key points
    assert list(tasks["anycapeval_video_content"]["dimensions"]) == ["IPos", "IApp", "IAct", "Ins", "Per", "Mov",
                                                                      "Bkg", "Evt"]
    for name in ("anycapeval_image_content", "anycapeval_video_content", "anycapeval_audio_content"):
        assert tasks[name]["average"]["keypoint_recall"]["value"] > 0.75  # references mention their key points
    judged = sum(1 for _ in (tmp_path / "run" / "judgments.jsonl").open())

    # the other protocol re-scores the same judgments from the cache
    v1 = run(RunOptions(model="reference", tasks="anycapeval", data_dir=str(DATA), protocol="anycap_v1",
                        cache_path=tmp_path / "c.db", output=tmp_path / "v1"))
    rows = [json.loads(line) for line in (tmp_path / "v1" / "judgments.jsonl").open()]
    assert len(rows) == judged and all(r["status"] == "ok" for r in rows)
    assert v1.summary["protocol"] == "anycap_v1"
    assert all(t["average"]["n"] > 0 for t in v1.summary["tasks"].values())
