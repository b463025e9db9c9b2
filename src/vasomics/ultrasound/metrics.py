"""Metrics for ULM and ultrasound vascular maps.

Localization metrics follow Heiles et al., "Performance benchmarking of microbubble-
localization algorithms for ultrasound localization microscopy", Nat Biomed Eng 6, 2022:

* **pairing** (:func:`pair_localizations`): in each frame, estimates and truths are paired by
  optimal assignment within ``pair_radius`` (0.5 λ); pairs closer than ``tp_radius``
  (0.25 λ) are true positives, the other estimates false positives and the other truths
  false negatives. Jaccard = TP/(TP+FP+FN), precision = TP/(TP+FP), recall = TP/(TP+FN).
  The RMSE is over all pairs within ``pair_radius`` after removing the static bias (mean
  error vector), in the units of the positions.
* **gridding index** (:func:`gridding_index`): concentration of sub-pixel positions. For
  each axis, the fractional parts of the positions are histogrammed in ``bins`` bins; the
  index is ``10·log10(bins · Σ p_b²)`` dB averaged over both axes: 0 dB for uniformly spread
  sub-pixel positions, ``10·log10(bins)`` dB when all positions snap to the pixel grid.
* **saturation** (:func:`saturation_curve`): fraction of the final map's pixels reached as
  frames accumulate.
* **gap** (:func:`two_peak_dip`): whether two parallel vessels appear as two peaks in a
  density profile: the dip between them relative to the smaller peak (resolved when < 0.75,
  a Sparrow/Rayleigh-like criterion).

Resolution: Fourier ring correlation (:func:`frc`; Nieuwenhuizen et al., "Measuring image
resolution in optical nanoscopy", Nat Methods 10, 2013, threshold 1/7) between two
independent halves, and its single-image variant (:func:`frc_single_image`; Koho et al.,
"Fourier ring correlation simplifies image restoration in fluorescence microscopy",
Nat Commun 10, 2019: the image is split into its even/even and odd/odd pixel sub-images).

Vascular metrics on rendered maps (:func:`vascular_metrics`): vessel density (area
fraction of the binarized map), perfusion index (mean map value over the field of view
divided by the mean over vessel pixels, i.e. fill-weighted density), box-counting fractal
dimension, and the vessel-diameter distribution (twice the distance to the background at
skeleton pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vasomics.errors import InputError
from vasomics.ultrasound.ulm.track import assign, candidate_pairs


@dataclass(frozen=True)
class PairingResult:
    """Counts and scores of :func:`pair_localizations`; ``rmse`` and ``bias`` (dz, dx) in the
    units of the positions."""

    tp: int
    fp: int
    fn: int
    rmse: float
    bias: tuple[float, float]

    @property
    def jaccard(self) -> float:
        return self.tp / max(self.tp + self.fp + self.fn, 1)

    @property
    def precision(self) -> float:
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def recall(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)


def pair_localizations(true_frame, true_z, true_x, est_frame, est_z, est_x,
                       pair_radius: float = 0.5, tp_radius: float = 0.25) -> PairingResult:
    """PALA pairing of estimated to true positions (same units, e.g. λ); see module doc."""
    tf, ef = np.asarray(true_frame, np.int64), np.asarray(est_frame, np.int64)
    frame = np.r_[tf, ef]
    z = np.r_[np.asarray(true_z, float), np.asarray(est_z, float)]
    x = np.r_[np.asarray(true_x, float), np.asarray(est_x, float)]
    nt = tf.size
    if nt == 0 or ef.size == 0:
        return PairingResult(0, int(ef.size), int(nt), float("nan"), (0.0, 0.0))
    src, dst = np.arange(nt), nt + np.arange(ef.size)
    i, j, d = candidate_pairs(frame, z, x, src, dst, 0, pair_radius)
    i, j = assign(i, j, d, frame[i])
    err = np.c_[z[j] - z[i], x[j] - x[i]]
    dist = np.hypot(err[:, 0], err[:, 1])
    tp = int(np.count_nonzero(dist < tp_radius))
    if err.shape[0]:
        bias = err.mean(axis=0)
        rmse = float(np.sqrt(np.mean(np.sum((err - bias) ** 2, axis=1))))
    else:
        bias, rmse = np.zeros(2), float("nan")
    return PairingResult(tp, int(ef.size - tp), int(nt - tp), rmse,
                         (float(bias[0]), float(bias[1])))


def gridding_index(z: np.ndarray, x: np.ndarray, bins: int = 20) -> float:
    """Gridding index in dB of positions in pixel units (see module docstring)."""
    vals = []
    for p in (np.asarray(z, float), np.asarray(x, float)):
        frac = p - np.floor(p + 0.5)  # in [-0.5, 0.5)
        h, _ = np.histogram(frac, bins=bins, range=(-0.5, 0.5))
        prob = h / max(h.sum(), 1)
        vals.append(10 * np.log10(bins * np.sum(prob ** 2)))
    return float(np.mean(vals))


def saturation_curve(frame: np.ndarray, z: np.ndarray, x: np.ndarray, shape: tuple[int, int],
                     scale: int = 10, n_points: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, fraction)``: fraction of the finally visited super-resolved pixels already
    visited after each of ``n_points`` frame counts."""
    Z, X = shape[0] * scale, shape[1] * scale
    iz = np.floor((np.asarray(z) + 0.5) * scale).astype(np.int64)
    ix = np.floor((np.asarray(x) + 0.5) * scale).astype(np.int64)
    ok = (iz >= 0) & (iz < Z) & (ix >= 0) & (ix < X)
    pix, fr = iz[ok] * X + ix[ok], np.asarray(frame)[ok]
    if pix.size == 0:
        return np.zeros(0), np.zeros(0)
    first = np.full(Z * X, np.iinfo(np.int64).max)
    np.minimum.at(first, pix, fr)
    firsts = np.sort(first[first < np.iinfo(np.int64).max])
    steps = np.linspace(fr.min(), fr.max(), n_points)
    return steps, np.searchsorted(firsts, steps, side="right") / firsts.size


def two_peak_dip(profile: np.ndarray) -> float:
    """Ratio of the minimum between the two highest local maxima of ``profile`` to the
    smaller of them (1.0 when fewer than two maxima exist)."""
    p = np.asarray(profile, float)
    peaks = np.flatnonzero((p[1:-1] > p[:-2]) & (p[1:-1] >= p[2:])) + 1
    if peaks.size < 2:
        return 1.0
    top = np.sort(peaks[np.argsort(p[peaks])[-2:]])
    return float(p[top[0]:top[1] + 1].min() / min(p[top[0]], p[top[1]]))


# --------------------------------------------------------------------------- FRC
def _rings(shape):
    fz = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    r = np.hypot(fz * shape[0] / min(shape), fx * shape[1] / min(shape))
    return np.rint(r * min(shape)).astype(int)


def frc(a: np.ndarray, b: np.ndarray, pixel_size: float = 1.0,
        threshold: float = 1 / 7) -> tuple[np.ndarray, np.ndarray, float]:
    """Fourier ring correlation of two images: ``(frequency, frc, resolution)`` with
    frequency in cycles per unit of ``pixel_size`` and resolution = 1 / the first frequency
    where the (3-ring smoothed) FRC drops below ``threshold`` (same unit; NaN if never)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 2:
        raise InputError(f"FRC needs two 2D images of one shape, got {a.shape} and {b.shape}")
    win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    fa, fb = np.fft.fft2((a - a.mean()) * win), np.fft.fft2((b - b.mean()) * win)
    ring = _rings(a.shape).ravel()
    nmax = min(a.shape) // 2
    num = np.bincount(ring, (fa * np.conj(fb)).real.ravel(), nmax + 1)
    da = np.bincount(ring, (np.abs(fa) ** 2).ravel(), nmax + 1)
    db = np.bincount(ring, (np.abs(fb) ** 2).ravel(), nmax + 1)
    curve = (num / np.sqrt(np.maximum(da * db, 1e-300)))[: nmax + 1]
    curve = np.convolve(curve, np.ones(3) / 3, mode="same")
    freq = np.arange(nmax + 1) / (min(a.shape) * pixel_size)
    below = np.flatnonzero(curve[1:] < threshold)
    res = float(1.0 / freq[below[0] + 1]) if below.size else float("nan")
    return freq, curve, res


def frc_single_image(img: np.ndarray, pixel_size: float = 1.0,
                     threshold: float = 1 / 7) -> float:
    """Single-image FRC resolution (Koho et al. 2019): FRC of the even/even and odd/odd
    sub-images (pixel size doubled); same unit as ``pixel_size``."""
    img = np.asarray(img, float)
    z, x = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    a, b = img[0:z:2, 0:x:2], img[1:z:2, 1:x:2]
    return frc(a, b, 2 * pixel_size, threshold)[2]


# --------------------------------------------------------------------------- vascular
def box_counting_dimension(mask: np.ndarray) -> float:
    """Box-counting (Minkowski–Bouligand) dimension of a 2D binary mask: slope of
    log N(s) against log(1/s) over box sizes s = 2, 4, …, up to a quarter of the image."""
    mask = np.asarray(mask, bool)
    n = min(mask.shape)
    sizes = 2 ** np.arange(1, int(np.log2(max(n // 4, 2))) + 1)
    counts = []
    for s in sizes:
        z, x = (mask.shape[0] // s) * s, (mask.shape[1] // s) * s
        blocks = mask[:z, :x].reshape(z // s, s, x // s, s).any(axis=(1, 3))
        counts.append(max(int(blocks.sum()), 1))
    if len(sizes) < 2:
        return float("nan")
    slope = np.polyfit(np.log(1.0 / sizes), np.log(counts), 1)[0]
    return float(slope)


def binarize_map(values: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Vessel mask of a density or power map: ``values > threshold`` (default: Otsu's
    threshold of log(1 + values))."""
    v = np.nan_to_num(np.asarray(values, float))
    if threshold is not None:
        return v > threshold
    from skimage.filters import threshold_otsu

    lv = np.log1p(np.maximum(v, 0))
    if np.ptp(lv) == 0:
        return np.zeros(v.shape, bool)
    return lv > threshold_otsu(lv)


def vascular_metrics(values: np.ndarray, pixel_size_mm: float, mask: np.ndarray | None = None,
                     roi: np.ndarray | None = None) -> dict[str, float | np.ndarray]:
    """Vessel density (fraction), perfusion index, fractal dimension and diameters (mm) of a
    rendered map; ``mask`` defaults to :func:`binarize_map`, ``roi`` to the whole image."""
    from skimage.morphology import skeletonize

    values = np.nan_to_num(np.asarray(values, float))
    mask = binarize_map(values) if mask is None else np.asarray(mask, bool)
    roi = np.ones(values.shape, bool) if roi is None else np.asarray(roi, bool)
    mask = mask & roi
    if not mask.any():
        raise InputError("no vessel pixels in the map (empty mask)")
    dist = ndimage.distance_transform_edt(mask) * pixel_size_mm
    skel = skeletonize(mask)
    diam = 2 * dist[skel] - pixel_size_mm  # distance to the first background pixel centre
    return {
        "vessel_density": float(mask.sum() / roi.sum()),
        "perfusion_index": float(values[roi].mean() / values[mask].mean()),
        "fractal_dimension": box_counting_dimension(mask),
        "diameters_mm": np.maximum(diam, pixel_size_mm),
        "median_diameter_mm": float(np.median(np.maximum(diam, pixel_size_mm))),
    }
