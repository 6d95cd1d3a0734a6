"""Bad input gives an error naming file, line and field, and leaves no half-written output."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env

from anycapeval.data import load_items
from anycapeval.registry import load_task_file, resolve_tasks
from anycapeval.types import AnyCapError, InputError

RECORD = {"id": 0, "image": "a.png", "conversations": [{"from": "human", "value": "Describe it. One sentence."},
                                                       {"from": "gpt", "value": "A cat."}],
          "restriction": ["instance", "The generated caption's length needs to be one sentence."],
          "key_point": ["mention the cat (cat)"]}


def official_dir(tmp_path: Path, lines: list[str]) -> Path:
    (tmp_path / "image").mkdir(parents=True)
    (tmp_path / "image" / "anycapeval_image_ref_content.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def image_content_task():
    return resolve_tasks("anycapeval_image_content")[0]


def test_malformed_line_names_file_and_line(tmp_path):
    root = official_dir(tmp_path, [json.dumps(RECORD), "{oops"])
    with pytest.raises(InputError) as err:
        load_items(image_content_task(), root)
    assert "anycapeval_image_ref_content.jsonl:2" in str(err.value)


def test_duplicate_id(tmp_path):
    root = official_dir(tmp_path, [json.dumps(RECORD), json.dumps(RECORD)])
    with pytest.raises(InputError) as err:
        load_items(image_content_task(), root)
    assert ":2: field 'id': duplicate id 0" in str(err.value)


def test_missing_and_wrong_fields(tmp_path):
    bad = dict(RECORD, restriction=["dance", "one sentence"])
    with pytest.raises(InputError, match=r":1: field 'restriction'.*dance"):
        load_items(image_content_task(), official_dir(tmp_path / "a", [json.dumps(bad)]))
    no_kp = {k: v for k, v in RECORD.items() if k != "key_point"}
    with pytest.raises(InputError, match=r":1: field 'key_point'"):
        load_items(image_content_task(), official_dir(tmp_path / "b", [json.dumps(no_kp)]))


def test_unknown_task():
    with pytest.raises(AnyCapError, match="unknown task or group 'nope'"):
        resolve_tasks("demo,nope")


def test_invalid_task_yaml_names_file_and_field(tmp_path):
    path = tmp_path / "broken_task.yaml"
    path.write_text("name: broken_task\nversion: '1'\ndataset: demo\nmodality: smell\naspect: content\n"
                    "data_file: x.jsonl\nscorer: kpd\njudge: {role: content, snapshot: s, prompt: p}\n"
                    "dimensions: {event: Evt}\n")
    with pytest.raises(AnyCapError) as err:
        load_task_file(path)
    assert "broken_task.yaml" in str(err.value) and "field 'modality'" in str(err.value)
    path.write_text("name: [unclosed\n")
    with pytest.raises(AnyCapError, match="invalid YAML"):
        load_task_file(path)


def run_cli(args, cache, tmp_path):
    return subprocess.run([sys.executable, "-m", "anycapeval.cli", *args], capture_output=True, text=True,
                          env=cli_env(cache), cwd=tmp_path, timeout=300)


@pytest.mark.parametrize("lines,needle", [
    (['{"id": 0, "caption": "A red ball."}', '{"id": 0, "caption": "Again."}'], ":2: field 'id': duplicate id"),
    (['{"id": 0, "caption": "A red ball."}', '{"id": 999, "caption": "x"}'], ":2: field 'id': unknown id '999'"),
    (['{"id": 0, "caption": "   "}'], ":1: field 'caption': empty caption"),
    (['{"id": 0, "caption": "ok"}', 'not json'], ":2: field '<line>': not valid JSON"),
    (['{"id": 0, "model_response_content": ["a", "b"]}'], ":1: field 'model_response_content'"),
])
def test_bad_predictions_file(tmp_path, isolated_cache, lines, needle):
    preds = tmp_path / "preds.jsonl"
    preds.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    result = run_cli(["score", "--predictions", str(preds), "--tasks", "demo_image_content", "--judge", "fake:perfect",
                      "--output", str(out)], isolated_cache, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "preds.jsonl" in result.stderr and needle in " ".join(result.stderr.split())
    assert not out.exists()  # nothing half-written


def test_unknown_task_cli(tmp_path, isolated_cache):
    result = run_cli(["run", "--model", "reference", "--tasks", "nope", "--output", str(tmp_path / "r")],
                     isolated_cache, tmp_path)
    assert result.returncode == 2 and "unknown task or group 'nope'" in result.stderr
    assert not (tmp_path / "r").exists()


def test_a_remembered_check_is_used_only_for_the_same_bytes(tmp_path, monkeypatch):
    """A data file checked once is not read whole again (the warm re-run of a big task); any change to
    its bytes makes it checked again, so a broken record still stops the run with file:line:field."""
    from anycapeval.data import item_source
    from anycapeval.readers import anycapeval as reader
    from anycapeval.store import Cache

    scans = []
    real_scan = reader._scan
    monkeypatch.setattr(reader, "_scan", lambda p, b, keep: scans.append(keep) or real_scan(p, b, keep))
    records = [dict(RECORD, id=n, key_point=[f"mention thing {n} (thing)"]) for n in range(5)]
    root = official_dir(tmp_path / "data", [json.dumps(r) for r in records])
    cache, task = Cache(tmp_path / "cache.sqlite"), image_content_task()
    first = item_source(task, root, cache=cache)
    again = item_source(task, root, cache=Cache(tmp_path / "cache.sqlite"))  # another process, same cache
    assert scans == [False]  # the second source read nothing but the file's hash
    assert list(again) == list(first) == load_items(task, root) and again.ids == first.ids == {str(n) for n in range(5)}
    assert list(again[2:4]) == list(first)[2:4] and [i.source.rsplit(":", 1)[1] for i in again] == list("12345")

    data = root / "image" / "anycapeval_image_ref_content.jsonl"
    records[3]["restriction"] = ["dance", "one sentence"]  # same file name, new bytes
    data.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    with pytest.raises(InputError, match=r"jsonl:4: field 'restriction'.*dance"):
        item_source(task, root, cache=cache)
    assert scans == [False, True, False]  # load_items keeps its items; the changed file was checked again
