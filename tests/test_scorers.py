"""KPD and style summaries computed by hand from docs/design.md "Scoring" on fixed judgments, both protocols."""

import pytest

from anycapeval.scorers import get_scorer
from anycapeval.types import GENERATION_ERROR, JUDGE_ERROR, OK, Item, Judgment, Prediction

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron".split()


def words(n: int, extra: str = "") -> str:
    return " ".join(WORDS[:n]) + extra


def content_case():
    """(item, prediction, judgment) rows: two dimensions, a penalty, a judge error, an unreadable
    constraint, a caption containing 'None', a generation error."""
    rng = "The generated caption's length needs to be 10 to 20 words."
    at_most = "The generated caption's length needs to be no more than 10 words."
    rows = [  # id, type, key points, decisions, caption, constraint
        ("a", "multi_class_position", 3, [1, 1, 0], words(12), rng),
        ("b", "multi_class_position", 2, [1, 1], words(5), rng),          # too short: 2 -> 1
        ("c", "multi_class_appearance", 4, [1, 0, 1, 1], words(8), at_most),
        ("d", "multi_class_appearance", 2, [0, 0], words(11), at_most),   # too long: 0 stays 0
        ("e", "multi_class_appearance", 2, None, words(6), at_most),      # judge error
        ("f", "multi_class_appearance", 1, [1], "None of them here", "Make it short."),
        ("g", "multi_class_position", 2, [1, 1], "", rng),                # generation error
    ]
    dims = {"multi_class_position": "IPos", "multi_class_appearance": "IApp"}
    out = []
    for item_id, typ, n_kp, decisions, caption, constraint in rows:
        item = Item("anycapeval_image_content", item_id, "image", "instr", "ref", typ, dims[typ], constraint,
                    tuple(f"kp{i}" for i in range(n_kp)))
        pred = (Prediction(item.task, item_id, "sys", caption) if caption else
                Prediction(item.task, item_id, "sys", "", GENERATION_ERROR, "missing"))
        judgment = (Judgment(OK, "j", value=decisions) if decisions is not None else
                    Judgment(JUDGE_ERROR, "j", error="boom"))
        out.append((item, pred, judgment))
    return out


def summarize(scorer_name, protocol, case, modality="image"):
    scorer = get_scorer(scorer_name, protocol, modality)
    scores = [scorer.score(i, p, [j] if j else []) for i, p, j in case]
    dims = list(dict.fromkeys(i.dimension for i, _, _ in case))
    return scorer.aggregate(scores, dims)


def check(entry, expected):
    value, (low, high) = entry["value"], entry["ci"]
    assert value == pytest.approx(expected, abs=1e-9)
    assert low - 1e-12 <= value <= high + 1e-12


def test_kpd_default_protocol():
    s = summarize("kpd", "default", content_case())
    ipos, iapp, avg = s["dimensions"]["IPos"], s["dimensions"]["IApp"], s["average"]
    check(ipos["kpd"], 100 * ((2 + 1) / 2) / ((12 + 5) / 2))
    check(ipos["keypoint_recall"], (2 + 1) / (3 + 2))
    check(ipos["length_compliance"], 1 / 2)
    check(iapp["kpd"], 100 * ((3 + 0 + 1) / 3) / ((8 + 11 + 4) / 3))
    check(iapp["keypoint_recall"], (3 + 0 + 1) / (4 + 2 + 1))
    check(iapp["length_compliance"], 1 / 2)  # f's constraint is unreadable: excluded, not passed
    check(avg["kpd"], (100 * 1.5 / 8.5 + 100 * 4 / 23) / 2)
    check(avg["keypoint_recall"], (3 / 5 + 4 / 7) / 2)
    check(avg["length_compliance"], 0.5)
    assert (ipos["n"], ipos["n_generation_error"], iapp["n"], iapp["n_judge_error"]) == (2, 1, 3, 1)
    assert (avg["n"], avg["n_judge_error"], avg["n_generation_error"], avg["n_skipped"]) == (5, 1, 1, 0)
    assert avg["unparsed_constraints"] and "Make it short." in avg["unparsed_constraints"][0]


def test_kpd_anycap_v1_protocol():
    s = summarize("kpd", "anycap_v1", content_case())
    ipos, iapp, avg = s["dimensions"]["IPos"], s["dimensions"]["IApp"], s["average"]
    check(ipos["kpd"], 100 * 1.5 / 8.5)
    check(iapp["kpd"], 100 * ((3 + 0) / 2) / ((8 + 11) / 2))  # f skipped: its caption contains "None"
    check(iapp["keypoint_recall"], 3 / 6)
    check(avg["kpd"], (100 * 1.5 / 8.5 + 100 * 3 / 19) / 2)
    # overall recall pools items and (image) ignores the penalty: (2+2+3+0) / (3+2+4+2)
    check(avg["keypoint_recall"], 7 / 11)
    assert iapp["n_skipped"] == 1 and avg["n_skipped"] == 1


def test_kpd_anycap_v1_video_recall_is_post_penalty():
    s = summarize("kpd", "anycap_v1", content_case(), modality="video")
    check(s["average"]["keypoint_recall"], (2 + 1 + 3 + 0) / 11)


def style_case():
    ref = words(10)
    rows = [  # id, type, judge score, caption, constraint
        ("g", "brief", 4, words(12), "The generated caption's length needs to be 10 to 20 words."),
        ("h", "brief", 3, words(14), "The generated caption's length needs to be 10 to 20 words."),  # > +30 %
        ("i", "poem", 2, "One. Two. Three.", "The generated caption's length cannot exceed two sentences."),
        ("j", "poem", 0, "One line.", "The generated caption's length cannot exceed two sentences."),
        ("k", "poem", None, "One line.", "The generated caption's length cannot exceed two sentences."),
    ]
    dims = {"brief": "Brf", "poem": "Poe"}
    out = []
    for item_id, typ, grade, caption, constraint in rows:
        item = Item("anycapeval_image_style", item_id, "image", "instr", ref, typ, dims[typ], constraint)
        judgment = Judgment(OK, "j", value=grade) if grade is not None else Judgment(JUDGE_ERROR, "j", error="x")
        out.append((item, Prediction(item.task, item_id, "sys", caption), judgment))
    return out


def test_style_default_protocol():
    s = summarize("style_rubric", "default", style_case())
    brf, poe, avg = s["dimensions"]["Brf"], s["dimensions"]["Poe"], s["average"]
    check(brf["style_score"], (4 + 1) / 2)   # h capped at 1 by the ±30 % rule
    check(poe["style_score"], (1 + 0) / 2)   # i capped at 1: three sentences > two
    check(brf["judge_score_uncapped"], 3.5)
    check(avg["style_score"], (2.5 + 0.5) / 2)
    check(poe["length_compliance"], 0.5)
    assert poe["n"] == 2 and poe["n_judge_error"] == 1


def test_style_anycap_v1_protocol():
    s = summarize("style_rubric", "anycap_v1", style_case())
    check(s["dimensions"]["Brf"]["style_score"], (4 + 3) / 2)  # the ±30 % rule is prompt-only there
    check(s["dimensions"]["Poe"]["style_score"], 0.5)
    check(s["average"]["style_score"], (4 + 3 + 1 + 0) / 4)   # mean over items, not dimensions


def test_kpd_never_scores_a_wrong_decision_count():
    item, pred, _ = content_case()[0]
    with pytest.raises(ValueError):
        get_scorer("kpd").score(item, pred, [Judgment(OK, "j", value=[1, 1])])


def test_item_without_key_points_is_skipped():
    item = Item("t", "27", "audio", "i", "r", "event", "Evt", "one sentence.", ())
    score = get_scorer("kpd").score(item, Prediction("t", "27", "s", "A dog barks."), [])
    assert score.status == "skipped"
