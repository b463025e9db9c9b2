"""Repeatability statistics (:mod:`vasomics.metrics.agreement`) against published and
hand-computed values."""

import numpy as np
import pytest

from vasomics.errors import InputError
from vasomics.metrics.agreement import icc, within_subject_cv

#: Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6],
                          [10, 5, 6, 9], [6, 2, 4, 7]], float)


def test_oneway_icc_shrout_fleiss():
    """ICC(1,1) published 0.17 (BMS 11.24, WMS 6.26: (11.24 - 6.26) / (11.24 + 3 x 6.26)
    = 0.1657); the judges' offsets count as error, so it lies below ICC(2,1) = 0.29."""
    y = SHROUT_FLEISS
    assert icc(*y.T, kind="oneway") == pytest.approx(0.1657, abs=5e-4)
    assert icc(*y.T, kind="oneway") < icc(*y.T)


def test_oneway_icc_of_exact_repeats_and_of_pure_noise():
    a = np.array([3.0, 7.0, 1.0, 9.0])
    assert icc(a, a, a, kind="oneway") == pytest.approx(1.0)
    # equal target means: MS_R = 0, all spread within targets: ICC(1,1) = -1 / (k - 1)
    assert icc([1.0, 2.0], [2.0, 1.0], kind="oneway") == pytest.approx(-1.0)
    assert icc([1.0, 2.0], [2.0, 1.0], [1.5, 1.5], kind="oneway") == pytest.approx(-0.5)


def test_within_subject_cv_by_hand():
    """Targets (10, 12) and (20, 16): SDs sqrt(2) and sqrt(8) over means 11 and 18."""
    expected = np.sqrt(((np.sqrt(2) / 11) ** 2 + (np.sqrt(8) / 18) ** 2) / 2)
    assert within_subject_cv([10, 20], [12, 16]) == pytest.approx(expected, rel=1e-12)
    assert within_subject_cv([5, 8], [5, 8], [5, 8]) == 0.0
    assert np.isnan(within_subject_cv([0, 8], [0, 9]))


@pytest.mark.parametrize("columns", [([1.0], [1.0]), ([1.0, np.nan], [1.0, 2.0])])
def test_agreement_needs_two_finite_targets(columns):
    with pytest.raises(InputError, match="two targets"):
        within_subject_cv(*columns)
    with pytest.raises(InputError, match="two targets"):
        icc(*columns, kind="oneway")


def test_unknown_icc_kind_is_refused():
    with pytest.raises(InputError, match="oneway"):
        icc([1, 2], [2, 3], kind="twoway")
