"""Agreement and repeatability of repeated measurements of the same targets (features of
one scan measured twice, by two methods, or on repeated or perturbed scans).

* :func:`icc`: single-measurement intraclass correlation: absolute agreement ICC(A,1)
  (= Shrout & Fleiss ICC(2,1), the default), consistency ICC(C,1) (= ICC(3,1)), McGraw &
  Wong 1996, or one-way ICC(1,1) for exchangeable repeats.
* :func:`within_subject_cv`: within-subject coefficient of variation (root mean square of
  each target's SD over its mean; Bland & Altman 1996), the repeatability of a feature in
  its own relative units.

Each function takes one sequence of values per measurement (rater, repeat), each holding one
value per target in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vasomics.errors import InputError


def _table(columns) -> np.ndarray:
    y = np.column_stack([np.asarray(c, float) for c in columns])
    if y.shape[0] < 2 or y.shape[1] < 2 or not np.all(np.isfinite(y)):
        raise InputError("needs at least two targets measured at least twice, all values "
                         "finite")
    return y


def icc(a: Sequence[float], b: Sequence[float], *more: Sequence[float],
        kind: str = "agreement") -> float:
    """Single-measurement intraclass correlation of paired measurements of the same targets
    (``a`` e.g. from predicted masks, ``b`` from manual masks, ``more``: further raters).

    Two-way model (McGraw & Wong 1996) from the mean squares of targets (MS_R), raters (MS_C)
    and residual (MS_E), ``n`` targets and ``k`` raters:

    * ``kind="agreement"``: ICC(A,1) = (MS_R − MS_E) / (MS_R + (k−1) MS_E + k (MS_C − MS_E) / n),
      absolute agreement; a systematic offset between raters lowers it. Numerically the same
      as Shrout & Fleiss' ICC(2,1). The honest form for method agreement (the default).
    * ``kind="consistency"``: ICC(C,1) = (MS_R − MS_E) / (MS_R + (k−1) MS_E), consistency;
      ignores a constant offset between raters (Shrout & Fleiss' ICC(3,1)).
    * ``kind="oneway"``: ICC(1,1) = (MS_R − MS_W) / (MS_R + (k−1) MS_W), one-way random
      effects, ``MS_W`` the pooled within-target mean square: the columns are exchangeable
      repeats (repeated scans, perturbed images), with no rater to tell apart (Shrout &
      Fleiss' ICC(1,1)); the form for test-retest repeatability.
    """
    if kind not in ("agreement", "consistency", "oneway"):
        raise InputError(f"ICC kind must be 'agreement', 'consistency' or 'oneway', got "
                         f"{kind!r}")
    y = _table((a, b, *more))
    n, k = y.shape
    grand = y.mean()
    ms_r = k * np.sum((y.mean(1) - grand) ** 2) / (n - 1)
    if kind == "oneway":
        ms_w = np.sum((y - y.mean(1, keepdims=True)) ** 2) / (n * (k - 1))
        denom = ms_r + (k - 1) * ms_w
        return float((ms_r - ms_w) / denom) if denom > 0 else float("nan")
    ms_c = n * np.sum((y.mean(0) - grand) ** 2) / (k - 1)
    sse = np.sum((y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + grand) ** 2)
    ms_e = sse / ((n - 1) * (k - 1))
    denom = ms_r + (k - 1) * ms_e
    if kind == "agreement":
        denom += k * (ms_c - ms_e) / n
    return float((ms_r - ms_e) / denom) if denom > 0 else float("nan")


def within_subject_cv(a: Sequence[float], b: Sequence[float], *more: Sequence[float]) -> float:
    """Within-subject coefficient of variation of repeated measurements (``a``, ``b``,
    ``more``: one sequence per repeat, one value per target): ``sqrt(mean_i (s_i / m_i)²)``
    with ``s_i`` the SD (``ddof=1``) and ``m_i`` the mean of target ``i``'s repeats (the
    root-mean-square method, Bland & Altman 1996, BMJ 313:744). A fraction (0.05: 5 %); NaN
    when a target's mean is 0."""
    y = _table((a, b, *more))
    m = y.mean(1)
    if np.any(m == 0):
        return float("nan")
    return float(np.sqrt(np.mean((y.std(1, ddof=1) / m) ** 2)))
