"""Mean average precision against scikit-learn, ties and classes without a positive."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from vidssl.eval.map import average_precision, average_precisions, mean_average_precision


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    n, k = 60, 7
    targets = (rng.random((n, k)) < 0.3).astype(np.float32)
    targets[:, 0] = 0  # a class without a positive test video
    targets[0, 1] = 1
    scores = rng.random((n, k))
    scores[:, 2:4] = np.round(scores[:, 2:4], 1)  # many ties
    scores[:, 4] = 0.5  # every video tied
    ap = average_precisions(scores, targets)
    assert np.isnan(ap[0])
    want = [average_precision_score(targets[:, c], scores[:, c]) for c in range(1, k) if targets[:, c].any()]
    np.testing.assert_allclose(ap[1:][~np.isnan(ap[1:])], want, rtol=0, atol=1e-12)
    m, scored = mean_average_precision(scores, targets)
    assert scored == int(targets.any(0).sum()) == len(want)
    assert m == pytest.approx(np.mean(want), abs=1e-12)


def test_hand_computed_values():
    assert average_precision([0.9, 0.8, 0.7], [1, 0, 1]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([0.5, 0.5, 0.1], [0, 1, 0]) == pytest.approx(0.5)  # a tie enters together
    assert average_precision([0.1, 0.9], [1, 0]) == pytest.approx(0.5)
    assert np.isnan(average_precision([0.1, 0.2], [0, 0]))
    assert mean_average_precision(np.zeros((2, 2)), np.zeros((2, 2)))[1] == 0


def test_shapes_must_match():
    with pytest.raises(ValueError, match=r"must both be \[N, K\]"):
        average_precisions(np.zeros((3, 2)), np.zeros((3, 3)))
