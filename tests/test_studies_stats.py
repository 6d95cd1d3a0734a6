"""The correlation statistics against scipy, computed independently here, and the FENSE accuracy rule."""

import numpy as np
import pytest
import scipy.stats as ss

from anycapeval.studies.stats import (
    correlations,
    kendall_tau_b,
    kendall_tau_c,
    pairwise_accuracy,
    pearson,
    resample_weights,
    spearman,
)

RNG = np.random.default_rng(7)
X_TIES = np.array([1, 2, 2, 3, 3, 3, 4, 5, 5, 1, 2, 4], float)  # coarse, like human ratings
Y_TIES = np.array([0.1, 0.4, 0.3, 0.5, 0.5, 0.9, 0.7, 0.8, 1.0, 0.2, 0.2, 0.6])
X_CONT, Y_CONT = RNG.normal(size=50), RNG.normal(size=50)
Y_CONT = X_CONT * 0.5 + Y_CONT
OURS_AND_SCIPY = [
    (pearson, lambda x, y: ss.pearsonr(x, y)[0]),
    (spearman, lambda x, y: ss.spearmanr(x, y)[0]),
    (kendall_tau_b, lambda x, y: ss.kendalltau(x, y, variant="b")[0]),
    (kendall_tau_c, lambda x, y: ss.kendalltau(x, y, variant="c")[0]),
]


@pytest.mark.parametrize("ours,theirs", OURS_AND_SCIPY)
@pytest.mark.parametrize("x,y", [(X_TIES, Y_TIES), (X_CONT, Y_CONT), (X_TIES, -X_TIES * 2 + 1)])
def test_statistics_match_scipy(ours, theirs, x, y):
    assert ours(x, y)[0] == pytest.approx(theirs(x, y), abs=1e-12)


@pytest.mark.parametrize("ours,theirs", OURS_AND_SCIPY)
def test_weighted_resamples_equal_scipy_on_the_expanded_sample(ours, theirs):
    weights = resample_weights(len(X_TIES), n_resamples=20, seed=3)
    values = ours(X_TIES, Y_TIES, weights)
    for w, value in zip(weights, values):
        rows = np.repeat(np.arange(len(X_TIES)), w.astype(int))
        assert value == pytest.approx(theirs(X_TIES[rows], Y_TIES[rows]), abs=1e-12)


def test_tau_c_differs_from_tau_b_when_the_scales_differ():
    x, y = np.array([1, 1, 2, 2, 3, 3, 4, 4.0]), np.array([1, 2, 1, 2, 2, 1, 2, 2.0])
    assert kendall_tau_c(x, y)[0] != pytest.approx(kendall_tau_b(x, y)[0])
    assert kendall_tau_c(x, y)[0] == pytest.approx(ss.kendalltau(x, y, variant="c")[0])


def test_cluster_bootstrap_keeps_clusters_together():
    clusters = ["a", "a", "b", "b", "b", "c"]
    w = resample_weights(6, clusters, n_resamples=50, seed=1)
    assert np.all(w[:, 0] == w[:, 1]) and np.all(w[:, 2] == w[:, 4])
    assert set(np.unique(w.sum(1))) <= {3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0}


def test_correlations_report_value_ci_and_are_reproducible():
    a = correlations(X_CONT, Y_CONT, n_resamples=300)
    b = correlations(X_CONT, Y_CONT, n_resamples=300)
    assert a == b
    for entry in a.values():
        low, high = entry["ci"]
        assert low < entry["value"] < high and entry["n"] == 50
    assert a["pearson"]["value"] == pytest.approx(ss.pearsonr(X_CONT, Y_CONT)[0])
    # a scipy percentile bootstrap of Pearson gives the same interval up to resampling noise
    ours = correlations(X_CONT, Y_CONT, n_resamples=2000, statistics=["pearson"])["pearson"]["ci"]
    ref = ss.bootstrap((X_CONT, Y_CONT), lambda x, y: ss.pearsonr(x, y)[0], paired=True, vectorized=False,
                       n_resamples=2000, method="percentile", random_state=0).confidence_interval
    assert ours[0] == pytest.approx(ref.low, abs=0.04) and ours[1] == pytest.approx(ref.high, abs=0.04)


def test_non_finite_rows_are_left_out():
    x = np.append(X_CONT, [np.nan, 1.0])
    y = np.append(Y_CONT, [1.0, np.inf])
    assert correlations(x, y, n_resamples=10)["spearman"]["value"] == pytest.approx(ss.spearmanr(X_CONT, Y_CONT)[0])


def test_pairwise_accuracy_excludes_vote_ties_and_counts_metric_ties_wrong():
    s1 = [0.9, 0.2, 0.5, 0.5, 0.7, 0.1]
    s2 = [0.1, 0.8, 0.5, 0.1, 0.3, 0.0]
    votes = [3, 2, 4, 0, -1, -4]
    facets = ["HC", "HC", "HI", "HI", "MM", "MM"]
    acc = pairwise_accuracy(s1, s2, votes, facets)
    assert acc["HC"] == {"accuracy": 50.0, "n": 2, "metric_ties": 0}
    assert acc["HI"] == {"accuracy": 0.0, "n": 1, "metric_ties": 1}  # the tie in votes (row 4) is left out
    assert acc["MM"]["accuracy"] == 0.0 and acc["total"]["n"] == 5
    assert acc["total"]["accuracy"] == pytest.approx(20.0)
