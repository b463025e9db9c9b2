"""Segmentation accuracy: overlap, topology, centerline and feature agreement.

All functions take boolean arrays of the same shape (2D or 3D) and an optional ``fov``
(field of view / region) restricting the evaluation; voxels outside it are ignored.

* :func:`dice`, :func:`confusion` (sensitivity, specificity, precision, accuracy).
* :func:`cl_dice`: centerline Dice (Shit et al., CVPR 2021): harmonic mean of topology
  precision ``|S(P) ∩ G| / |S(P)|`` and topology sensitivity ``|S(G) ∩ P| / |S(G)|`` with
  ``S`` the skeleton (``skimage.morphology.skeletonize``, 2D and 3D).
* :func:`roc_auc`: area under the ROC curve of a continuous score (rank statistic, ties
  averaged).
* :func:`betti_errors`: absolute differences of Betti numbers b0 (connected components) and
  b1 (2D: holes; 3D: tunnels, from the Euler characteristic b1 = b0 + b2 - chi), with 8/26
  foreground connectivity.
* :func:`centerline_overlap`: fraction of each skeleton within ``tolerance_mm`` of the other
  (completeness and correctness, Heipke et al.), and their harmonic mean.
* :func:`paired_features`: catalogue features of predicted and manual masks, computed by the
  same code with the same parameters, ready for :func:`vasomics.metrics.agreement.icc`.
* :func:`mask_tree_features`: the mask-only tree features VX.A.T.FD and VX.A.T.VFRAC by the
  catalogue's code, without the centerline graph (for many masks, e.g. width-sensitivity
  checks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from vasomics.errors import InputError


def _pair(pred, gt, fov=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise InputError(f"predicted mask shape {pred.shape} differs from the reference "
                         f"{gt.shape}")
    if fov is not None:
        fov = np.asarray(fov, bool)
        if fov.shape != pred.shape:
            raise InputError(f"field-of-view mask shape {fov.shape} differs from the masks "
                             f"{pred.shape}")
    return pred, gt, fov


def dice(pred, gt, fov=None) -> float:
    """Dice coefficient 2|P∩G| / (|P|+|G|) inside ``fov`` (1.0 when both are empty)."""
    pred, gt, fov = _pair(pred, gt, fov)
    if fov is not None:
        pred, gt = pred & fov, gt & fov
    total = int(np.count_nonzero(pred)) + int(np.count_nonzero(gt))
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(pred & gt)) / total


def confusion(pred, gt, fov=None) -> dict[str, float]:
    """Sensitivity, specificity, precision and accuracy inside ``fov``."""
    pred, gt, fov = _pair(pred, gt, fov)
    if fov is not None:
        pred, gt = pred[fov], gt[fov]
    tp = int(np.count_nonzero(pred & gt))
    fp = int(np.count_nonzero(pred & ~gt))
    fn = int(np.count_nonzero(~pred & gt))
    tn = pred.size - tp - fp - fn

    def ratio(a, b):
        return float(a / b) if b else float("nan")

    return {"sensitivity": ratio(tp, tp + fn), "specificity": ratio(tn, tn + fp),
            "precision": ratio(tp, tp + fp), "accuracy": ratio(tp + tn, pred.size)}


def roc_auc(score, gt, fov=None) -> float:
    """ROC AUC of a continuous ``score`` against boolean ``gt`` inside ``fov``
    (Mann-Whitney statistic with average ranks for ties)."""
    score = np.asarray(score, np.float64)
    gt = np.asarray(gt, bool)
    if score.shape != gt.shape:
        raise InputError(f"score shape {score.shape} differs from the reference {gt.shape}")
    if fov is not None:
        _, _, fov = _pair(gt, gt, fov)
        score, gt = score[fov], gt[fov]
    else:
        score, gt = score.ravel(), gt.ravel()
    n_pos = int(np.count_nonzero(gt))
    n_neg = gt.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(score)
    return float((ranks[gt].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Boolean skeleton (``skimage.morphology.skeletonize``, 2D or 3D)."""
    from skimage.morphology import skeletonize

    return skeletonize(np.asarray(mask, bool))


def cl_dice(pred, gt, fov=None) -> float:
    """Centerline Dice (see module doc) inside ``fov``; 1.0 when both masks are empty."""
    pred, gt, fov = _pair(pred, gt, fov)
    if fov is not None:
        pred, gt = pred & fov, gt & fov
    sp, sg = skeleton(pred), skeleton(gt)
    n_sp, n_sg = int(np.count_nonzero(sp)), int(np.count_nonzero(sg))
    if n_sp == 0 and n_sg == 0:
        return 1.0
    tprec = np.count_nonzero(sp & gt) / n_sp if n_sp else 0.0
    tsens = np.count_nonzero(sg & pred) / n_sg if n_sg else 0.0
    return 0.0 if tprec + tsens == 0 else float(2 * tprec * tsens / (tprec + tsens))


def betti_numbers(mask: np.ndarray) -> tuple[int, int]:
    """(b0, b1) of a 2D or 3D boolean mask (8/26-connected foreground)."""
    from skimage.measure import euler_number

    mask = np.asarray(mask, bool)
    full = np.ones((3,) * mask.ndim, bool)
    b0 = int(ndi.label(mask, structure=full)[1])
    chi = int(euler_number(mask, connectivity=mask.ndim))
    if mask.ndim == 2:
        return b0, b0 - chi
    # b2: cavities = background components not touching the border (6-connected background)
    bg, n_bg = ndi.label(np.pad(~mask, 1, constant_values=True))
    b2 = n_bg - 1 if n_bg else 0
    return b0, b0 + b2 - chi


def betti_errors(pred, gt, fov=None) -> dict[str, int]:
    """Absolute Betti-number errors |b0(P)-b0(G)| and |b1(P)-b1(G)| inside ``fov``."""
    pred, gt, fov = _pair(pred, gt, fov)
    if fov is not None:
        pred, gt = pred & fov, gt & fov
    p0, p1 = betti_numbers(pred)
    g0, g1 = betti_numbers(gt)
    return {"betti0_error": abs(p0 - g0), "betti1_error": abs(p1 - g1)}


def centerline_overlap(pred, gt, spacing: Sequence[float] | None = None,
                       tolerance_mm: float = 1.0, fov=None) -> dict[str, float]:
    """Completeness (reference centerline within ``tolerance_mm`` of the predicted one),
    correctness (the reverse) and their harmonic mean ("quality")."""
    pred, gt, fov = _pair(pred, gt, fov)
    if fov is not None:
        pred, gt = pred & fov, gt & fov
    spacing = tuple(spacing or (1.0,) * pred.ndim)
    sp, sg = skeleton(pred), skeleton(gt)
    if not sp.any() or not sg.any():
        return {"completeness": float(sp.any() == sg.any()),
                "correctness": float(sp.any() == sg.any()), "quality": float(sp.any() == sg.any())}
    d_to_p = ndi.distance_transform_edt(~sp, sampling=spacing)
    d_to_g = ndi.distance_transform_edt(~sg, sampling=spacing)
    comp = float(np.mean(d_to_p[sg] <= tolerance_mm))
    corr = float(np.mean(d_to_g[sp] <= tolerance_mm))
    q = 0.0 if comp + corr == 0 else 2 * comp * corr / (comp + corr)
    return {"completeness": comp, "correctness": corr, "quality": q}


def paired_features(triples, feature_ids: Sequence[str]
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{feature id: (predicted values, manual values)}`` over ``(predicted, manual, fov)``
    boolean mask triples (2D or 3D, unit spacing: lengths in pixels): tree features of each
    mask with the FOV as the region mask, the manual mask cut to the FOV, default
    feature parameters for both."""
    from vasomics.api import extract_features
    from vasomics.image import Image

    values = {i: ([], []) for i in feature_ids}
    for pred, gt, fov in triples:
        region = Image(np.asarray(fov).astype(np.uint8))
        for k, m in enumerate((np.asarray(pred, bool), np.asarray(gt, bool) & fov)):
            table = extract_features(Image(m.astype(np.uint8)), region=region)
            for i in feature_ids:
                values[i][k].append(table.value(i))
    return {i: (np.asarray(p), np.asarray(m)) for i, (p, m) in values.items()}


def mask_tree_features(mask, fov) -> dict[str, float]:
    """``{"VX.A.T.FD": ..., "VX.A.T.VFRAC": ...}`` of a boolean mask (2D or 3D, unit spacing)
    with ``fov`` as the region mask: the values :func:`paired_features` gives (default
    feature parameters, auto box range), without building the centerline graph."""
    from vasomics.features.fractal import fractal_dimension
    from vasomics.features.params import FeatureParams, resolve_params
    from vasomics.image import Image

    mask, _, fov = _pair(mask, mask, fov)
    spacing = (1.0,) * mask.ndim
    p = resolve_params(FeatureParams(), mask=Image(mask.astype(np.uint8)))
    fd = fractal_dimension(mask, spacing, p.fractal_min_box_mm, p.fractal_max_box_mm,
                           p.fractal_scales_per_octave)[0]
    return {"VX.A.T.FD": float(fd),
            "VX.A.T.VFRAC": np.count_nonzero(mask & fov) / np.count_nonzero(fov)}


def evaluate(pred, gt, fov=None, *, score=None, spacing=None, tolerance_mm: float = 1.0,
             topology: bool = True) -> dict[str, float]:
    """All overlap metrics (plus ROC AUC when ``score`` is given, Betti errors when
    ``topology``) as one flat dictionary."""
    out = {"dice": dice(pred, gt, fov), "cldice": cl_dice(pred, gt, fov)}
    out.update(confusion(pred, gt, fov))
    if score is not None:
        out["roc_auc"] = roc_auc(score, gt, fov)
    out.update(centerline_overlap(pred, gt, spacing, tolerance_mm, fov))
    if topology:
        out.update(betti_errors(pred, gt, fov))
    return out
