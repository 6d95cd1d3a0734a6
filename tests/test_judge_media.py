"""What the style judge sees: media by modality, and the --judge-media policy."""

import json

from conftest import judge_answer
from loopback_server import LoopbackServer

from anycapeval.runner import RunOptions, run


def parts_of(body):
    return body["messages"][0]["content"]


def run_demo_style(tmp_path, server, **kw):
    return run(RunOptions(model="reference", tasks="demo_image_style,demo_video_style,demo_audio_style",
                          judge="openai:judge-snap", judge_base_url=server.base_url, judge_concurrency=4,
                          cache_path=tmp_path / "c.db", output=tmp_path / "run", **kw))


def test_style_judge_receives_media_of_each_modality(tmp_path):
    with LoopbackServer(judge_answer) as server:
        result = run_demo_style(tmp_path, server)
    assert result.exit_code == 0
    kinds = {}
    for body in server.requests:
        parts = parts_of(body)
        kinds.setdefault(tuple(sorted({p["type"] for p in parts})), []).append(parts)
    images = [p for p in kinds[("image_url", "text")] if sum(x["type"] == "image_url" for x in p) == 1]
    videos = [p for p in kinds[("image_url", "text")] if sum(x["type"] == "image_url" for x in p) == 8]
    audios = kinds[("input_audio", "text")]
    assert len(images) == 8 and len(videos) == 8 and len(audios) == 8
    assert all(x["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in images for x in p[1:])
    stamps = [float(s.rstrip("s")) for s in videos[0][1]["text"].split("at ")[1].rstrip(":").split(", ")]
    assert stamps == sorted(stamps) and stamps[0] == 0.0 and len(stamps) == 8
    assert audios[0][1]["input_audio"]["format"] == "wav" and len(audios[0][1]["input_audio"]["data"]) > 1000
    seen = result.summary["tasks"]["demo_video_style"]["judge_media_seen"]
    assert seen == {"video_frames:8": 8}


def test_judge_media_never_sends_text_only(tmp_path):
    with LoopbackServer(judge_answer) as server:
        run_demo_style(tmp_path, server, judge_media="never")
    # text only goes as a plain string, which every chat template can render
    assert server.requests and all(isinstance(parts_of(b), str) for b in server.requests)


def _data_dir_with_missing_media(tmp_path):
    record = {"id": 50, "image": "absent.jpg", "restriction": ["brief", "The generated caption's length needs to "
                                                               "be 10 to 20 words."],
              "conversations": [{"from": "human", "value": "Describe briefly."},
                                {"from": "gpt", "value": "A small red house stands under a bright yellow sun "
                                                         "beside a green tree."}]}
    root = tmp_path / "data"
    (root / "image").mkdir(parents=True)
    (root / "image" / "anycapeval_image_ref_style.jsonl").write_text(json.dumps(record) + "\n")
    return root


def test_missing_media_auto_is_text_only_with_warning_always_is_an_error(tmp_path):
    root = _data_dir_with_missing_media(tmp_path)
    with LoopbackServer(judge_answer) as server:
        auto = run(RunOptions(model="reference", tasks="anycapeval_image_style", data_dir=str(root),
                              judge="openai:judge-snap", judge_base_url=server.base_url,
                              cache_path=tmp_path / "c.db", output=tmp_path / "auto"))
        assert auto.exit_code == 0 and server.request_count == 1
        assert any("text-only" in m for m in auto.messages)
        row = json.loads((tmp_path / "auto" / "judgments.jsonl").read_text())
        assert row["media_sent"] == "none" and any("absent.jpg" in n for n in row["notes"])

        always = run(RunOptions(model="reference", tasks="anycapeval_image_style", data_dir=str(root),
                                judge="openai:judge-snap", judge_base_url=server.base_url, judge_media="always",
                                cache_path=tmp_path / "c2.db", output=tmp_path / "always"))
        assert server.request_count == 1  # no call for an item that cannot be judged as asked
    assert always.exit_code == 3
    row = json.loads((tmp_path / "always" / "judgments.jsonl").read_text())
    assert row["status"] == "judge_error" and "absent.jpg" in row["error"]
    assert always.summary["tasks"]["anycapeval_image_style"]["average"]["n_judge_error"] == 1
