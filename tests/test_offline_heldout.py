"""Leave-one-dataset-out choice of the offline judge's quality score, on built sets (no model)."""

from pathlib import Path

import numpy as np
import pytest

from anycapeval.studies import heldout as H
from anycapeval.studies.stats import kendall_tau_c

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def units(parts, flags=None):
    parts = np.asarray(parts, float)
    return H.Units(parts, np.zeros((len(parts), len(H.RULES)), bool) if flags is None else np.asarray(flags, bool))


def test_scores_are_the_weighted_mean_minus_penalties():
    flags = [[True, False, False, False, False], [False] * 5]
    u = units([[0.5, 0.7, 0.9, 0.4], [0.5, 0.7, 0.9, 0.4]], flags)
    c = H.Config((1.0, 0.0, 1.0), consistency=0.5, fluency=0.3, rules=("unfinished",))
    s = H.scores(u, [c, H.PLAIN])
    assert s[:, 0] == pytest.approx([0.7 - 0.2 - 0.3, 0.7 - 0.2]) and s[:, 1] == pytest.approx([0.5, 0.5])


def test_tau_c_matches_the_study_statistics():
    rng = np.random.default_rng(0)
    values, human = rng.normal(size=(40, 3)), rng.integers(0, 5, 40).astype(float)
    ours = H.tau_c(values, human)
    assert ours == pytest.approx([kendall_tau_c(values[:, k], human)[0] for k in range(3)])


def test_a_term_only_one_set_rewards_is_dropped_and_plain_wins_held_out():
    # Set A rewards max cosine, set B punishes it; C is indifferent: held out, A's gain never carries over.
    a = H.HumanSet("A", "%", units([[0.5, 0.9, 0.5, 0], [0.6, 0.1, 0.6, 0]]), pairs=np.array([[0, 1]]))
    b = H.HumanSet("B", "%", units([[0.6, 0.1, 0.6, 0], [0.5, 0.9, 0.5, 0]]), pairs=np.array([[0, 1]]))
    c = H.HumanSet("C", "%", units([[0.6, 0.6, 0.6, 0], [0.5, 0.5, 0.5, 0]]), pairs=np.array([[0, 1]]))
    result = H.leave_one_out([a, b, c], [H.PLAIN, H.Config((1.0, 1.0, 0.0))])
    assert result["folds"]["A"]["held_out"] == 0.0 and result["folds"]["B"]["config"] == "w=1/1/0 c=0 f=0 rules=-"
    assert "max cosine" not in result["kept_terms"] and result["chosen"] == H.PLAIN


@pytest.mark.skipif(not (DATA / "human").is_dir(), reason="shared human data not present")
def test_fluency_pairs_are_built_inside_clips():
    human = DATA / "human"
    keys, plan = H.fluency_pairs(human / "fense_audiocaps_eval.json", human / "fense_fluency_annotations_723.csv")
    assert len(plan) == 816 and len({k[0] for k in keys}) == 675  # captions with a partner of the other label
    assert all(keys[i][1] == keys[j][1] for i, j in plan)  # both captions scored against the same clip
