import json

import pytest

from anycapeval.judges.parse import JudgeAnswerError, parse_content, parse_style

OFFICIAL = {"caption_evaluation": {"key_points_scores": {"key_point_1": 1, "key_point_2": 0, "key_point_3": 1},
                                   "total_score": 2, "score_reasons": {"key_point_1": "a", "key_point_2": "b",
                                                                       "key_point_3": "c"}}}


def test_our_schema():
    raw = json.dumps({"decisions": [{"key_point": 1, "score": 1}, {"key_point": 2, "score": 0}]})
    assert parse_content(raw, 2) == [1, 0]


def test_official_schema_and_fences():
    assert parse_content(json.dumps(OFFICIAL), 3) == [1, 0, 1]
    assert parse_content("Here you go:\n```json\n" + json.dumps(OFFICIAL) + "\n```", 3) == [1, 0, 1]


def test_official_keys_are_ordered_by_number():
    scores = {"key_point_2": 0, "key_point_1": 1}
    raw = json.dumps({"caption_evaluation": {"key_points_scores": scores, "total_score": 1}})
    assert parse_content(raw, 2) == [1, 0]


@pytest.mark.parametrize("raw,n", [
    (json.dumps({"decisions": [{"key_point": 1, "score": 1}]}), 2),                       # too few
    (json.dumps({"decisions": [{"score": 1}, {"score": 1}, {"score": 0}]}), 2),           # too many
    (json.dumps({"decisions": [{"key_point": 2, "score": 1}, {"key_point": 1, "score": 1}]}), 2),  # order
    (json.dumps({"decisions": [{"key_point": 1, "score": 2}]}), 1),                       # not binary
    (json.dumps({**OFFICIAL, "caption_evaluation": {**OFFICIAL["caption_evaluation"], "total_score": 3}}), 3),
    (json.dumps(OFFICIAL), 4),
    ("I think the caption is fine.", 1),
    ("{not json", 1),
])
def test_invalid_content_answers(raw, n):
    with pytest.raises(JudgeAnswerError):
        parse_content(raw, n)


def test_style_answers():
    assert parse_style('{"score": 3, "reason": "ok"}') == 3
    assert parse_style('```json\n{"score": "4"}\n```') == 4
    for bad in ('{"score": 5}', '{"score": -1}', '{"score": 2.5}', '{"reason": "x"}', '{"score": true}', "three"):
        with pytest.raises(JudgeAnswerError):
            parse_style(bad)
