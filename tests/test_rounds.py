"""The scorer contract's extension points: task files naming scorers and judge roles, and judging in
rounds (a later request built from earlier answers), with failures stopping an item's later rounds."""

import json
from dataclasses import replace

import pytest

from anycapeval import runner as runner_mod
from anycapeval.judges.base import JudgeBase
from anycapeval.judges.parse import JudgeAnswerError
from anycapeval.judges.roles import CONTENT
from anycapeval.registry import load_task_file
from anycapeval.scorers import SCORERS
from anycapeval.scorers.kpd import KPDScorer
from anycapeval.types import JUDGE_ERROR, OK, AnyCapError, JudgeRequest, Judgment, Role, Score

TASK_YAML = """name: {name}
version: '1'
dataset: demo
modality: image
aspect: content
data_file: demo_image_content.jsonl
scorer: {scorer}
judge: {judge}
dimensions: {{multi_class_position: IPos, multi_class_appearance: IApp, instance: Ins, perspective: Per}}
"""


CONTENT_JUDGE = "{role: content, snapshot: s, prompt: prompts/anycapeval_content.txt}"


def write_task(tmp_path, name, scorer="kpd", judge=CONTENT_JUDGE):
    path = tmp_path / f"{name}.yaml"
    path.write_text(TASK_YAML.format(name=name, scorer=scorer, judge=judge))
    return path


def test_task_file_checks_scorer_and_roles(tmp_path):
    with pytest.raises(AnyCapError, match="field 'scorer': unknown scorer 'nope'"):
        load_task_file(write_task(tmp_path, "t1", scorer="nope"))
    with pytest.raises(AnyCapError, match="field 'judge.role': unknown role"):
        load_task_file(write_task(tmp_path, "t2", judge="{role: smell, snapshot: s, prompt: p.txt}"))
    with pytest.raises(AnyCapError, match="needs judges for roles \\['content'\\]"):
        load_task_file(write_task(tmp_path, "t3", judge="{role: style, snapshot: s, prompt: p.txt}"))
    with pytest.raises(AnyCapError, match="each role may appear once"):
        load_task_file(write_task(tmp_path, "t4", judge="[{role: content, snapshot: s, prompt: p},"
                                  " {role: content, snapshot: s, prompt: p}]"))


def _parse_echo(raw: str, request: JudgeRequest) -> int:
    value = json.loads(raw).get("n")
    if not isinstance(value, int):
        raise JudgeAnswerError("no n")
    return value


ECHO = Role("echo", _parse_echo, lambda r, hit: json.dumps({"n": 1}), placeholders=("answer",))


class TwoRoundScorer(KPDScorer):
    """Round 1 asks the content judge; round 2 asks `echo` with the number of matched key points
    in the prompt, so the second request depends on the first answer."""

    name = "two_round"
    judge_roles = (CONTENT, ECHO)

    def requests(self, item, prediction, templates, judgments):
        if not judgments:
            return [self.request(item, prediction, templates["content"])]
        if len(judgments) == 1:
            matched = sum(judgments[0].value)
            return [JudgeRequest(role="echo", rules=ECHO, prompt=f"matched={matched}", caption=prediction.caption)]
        return []

    def score(self, item, prediction, judgments):
        base = super().score(item, prediction, judgments[:1])
        if base.status != OK:
            return base
        failed = self.unscored(item, prediction, judgments)
        if failed:
            return failed
        return Score(item.task, item.id, item.dimension, OK, {**base.metrics, "echo": judgments[1].value})


class EchoJudge(JudgeBase):
    """Answers the echo role by reading the number back out of the prompt; fails on item 3's."""

    spec = "echo-judge"
    approximation = False
    supports_media = False
    identity = {"kind": "echo"}  # type: ignore[assignment]

    def __init__(self):
        self.prompts = []

    def settings(self):
        return {}

    async def judge(self, request):
        self.prompts.append(request.prompt)
        if request.role == "content":
            value = [1] * len(request.key_points)
            return Judgment(OK, self.spec, raw="", value=value)
        n = int(request.prompt.split("=")[1])
        if n == 3:
            return Judgment(JUDGE_ERROR, self.spec, error="echo refuses 3")
        return Judgment(OK, self.spec, raw=json.dumps({"n": n}), value=_parse_echo(json.dumps({"n": n}), request))


@pytest.fixture
def two_round(tmp_path, monkeypatch):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "echo.txt").write_text("Say {answer}")
    monkeypatch.setitem(SCORERS, "two_round", TwoRoundScorer)
    judge_yaml = ("[{role: content, snapshot: s, prompt: prompts/anycapeval_content.txt},"
                  " {role: echo, snapshot: s, prompt: " + str(tmp_path / "prompts" / "echo.txt") + "}]")
    task = load_task_file(write_task(tmp_path, "two_round_demo", scorer="two_round", judge=judge_yaml))
    return task


def test_second_round_sees_first_answers_and_failures_are_counted(two_round, tmp_path, monkeypatch):
    judge = EchoJudge()
    monkeypatch.setattr(runner_mod, "resolve_tasks", lambda spec: [two_round])
    monkeypatch.setattr(runner_mod, "make_judge", lambda spec, **kw: judge)
    result = runner_mod.run(runner_mod.RunOptions(model="reference", tasks="two_round_demo", judge="fake:perfect",
                                                  output=tmp_path / "run", cache_path=tmp_path / "c.sqlite"))
    summary = result.summary["tasks"]["two_round_demo"]
    rows = [json.loads(line) for line in (tmp_path / "run" / "judgments.jsonl").read_text().splitlines()]
    scores = [json.loads(line) for line in (tmp_path / "run" / "scores.jsonl").read_text().splitlines()]
    echo_prompts = [p for p in judge.prompts if p.startswith("matched=")]
    # one second-round request per item, built from its first answer; equal prompts are asked once
    assert sum(r["round"] == 1 for r in rows) == 8 and len(rows) == 16
    assert sorted(echo_prompts) == sorted({f"matched={sum(r['value'])}" for r in rows if r["round"] == 0})
    errors = [s for s in scores if s["status"] == JUDGE_ERROR]
    assert errors and all("echo refuses 3" in s["error"] for s in errors)
    assert all(s["metrics"]["echo"] == s["metrics"]["matched"] for s in scores if s["status"] == OK)
    assert summary["average"]["n_judge_error"] == len(errors)
    assert result.exit_code == 3  # judge errors above the allowed rate (0)
    assert set(summary["judges_by_role"]) == {"content", "echo"}
    # a second run answers everything from the cache except the failed judgments
    judge.prompts.clear()
    runner_mod.run(runner_mod.RunOptions(model="reference", tasks="two_round_demo", judge="fake:perfect",
                                         output=tmp_path / "run2", cache_path=tmp_path / "c.sqlite"))
    assert judge.prompts == ["matched=3"]


def test_first_round_failure_skips_later_rounds(two_round, tmp_path, monkeypatch):
    judge = EchoJudge()

    async def failing_content(request):
        judge.prompts.append(request.prompt)
        if request.role == "content":
            return Judgment(JUDGE_ERROR, judge.spec, error="content down")
        raise AssertionError("no second round after a failed first round")

    judge.judge = failing_content
    monkeypatch.setattr(runner_mod, "resolve_tasks", lambda spec: [two_round])
    monkeypatch.setattr(runner_mod, "make_judge", lambda spec, **kw: judge)
    result = runner_mod.run(runner_mod.RunOptions(model="reference", tasks="two_round_demo", judge="fake:perfect",
                                                  output=tmp_path / "run", cache_path=tmp_path / "c.sqlite"))
    assert result.summary["tasks"]["two_round_demo"]["average"]["n_judge_error"] == 8
    assert len(judge.prompts) == 8


def test_the_role_a_request_carries_is_used_by_the_fake_judge():
    from anycapeval.judges.fake import FakeJudge

    role = Role("_test_role", _parse_echo, lambda r, hit: json.dumps({"n": 7 if hit else 0}))
    request = replace(JudgeRequest(role="content", rules=CONTENT, prompt="", caption=""), role=role.name, rules=role)
    j = FakeJudge("perfect")._one(request)
    assert j.status == OK and j.value == 7


MYCAPS_YAML = """name: mycaps
version: '1.0'
dataset: mycaps
modality: image
data_file: refs.jsonl
scorer: reference_metrics
dimensions: {brief: MyCaps}
options: {instruction: 'Describe the image in one sentence.', metrics: [bleu1, cider]}
"""


def test_a_new_benchmark_is_one_task_file_and_one_reader(tmp_path, monkeypatch):
    """docs/design.md, "Adding a benchmark": a task file, a reader, and the reader's line in data.READERS."""
    from anycapeval import data
    from anycapeval.files import read_jsonl
    from anycapeval.types import Item

    def load_mycaps_items(task, data_dir, media_dir):
        path = tmp_path / task.config.data_file
        return [Item(task=task.name, id=r["image"], modality="image", instruction=task.config.options["instruction"],
                     reference=r["captions"][0], instruction_type="brief", dimension="MyCaps", length_constraint="",
                     media=r["image"], source=f"{path}:{n}", references=tuple(r["captions"]))
                for n, r in read_jsonl(path)]

    (tmp_path / "refs.jsonl").write_text('{"image": "a.jpg", "captions": ["a cat", "a small cat"]}\n'
                                         '{"image": "b.jpg", "captions": ["a dog"]}\n')
    (tmp_path / "mycaps.yaml").write_text(MYCAPS_YAML)
    monkeypatch.setitem(data.READERS, "mycaps", load_mycaps_items)
    task = load_task_file(tmp_path / "mycaps.yaml")
    monkeypatch.setattr(runner_mod, "resolve_tasks", lambda spec: [task])
    result = runner_mod.run(runner_mod.RunOptions(model="reference", tasks="mycaps", output=tmp_path / "run",
                                                  cache_path=tmp_path / "c.sqlite"))
    average = result.summary["tasks"]["mycaps"]["average"]
    assert result.exit_code == 0 and average["n"] == 2 and average["bleu1"]["value"] == pytest.approx(1.0)
