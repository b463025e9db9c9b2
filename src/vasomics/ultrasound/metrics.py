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
independent halves; for ULM the tracks are split in two (:func:`frc_tracks`).

Single rendered maps (no independent halves) are compared by their vessel cross-section
widths (:func:`profile_widths`, FWHM along the Hessian normal at ridge points).

Vascular metrics on rendered maps (:func:`vascular_metrics`): vessel density (area
fraction of the binarized map), perfusion index (mean map value over the field of view
divided by the 99th percentile over vessel pixels), box-counting fractal
dimension (the features module's), and, from the mask's centreline graph (the chain's
``mask_to_graph``), the vessel-diameter distribution and segment tortuosity L/D.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vasomics.errors import InputError
from vasomics.image import Image
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
    curve[0] = 1.0  # the mean was removed; ring 0 carries no information
    curve[1:] = np.convolve(np.r_[curve[1], curve[1:], curve[-1]], np.ones(3) / 3, "valid")
    freq = np.arange(nmax + 1) / (min(a.shape) * pixel_size)
    below = np.flatnonzero(curve[1:] < threshold)
    res = float(1.0 / freq[below[0] + 1]) if below.size else float("nan")
    return freq, curve, res


def frc_tracks(track: np.ndarray, frame: np.ndarray, z: np.ndarray, x: np.ndarray,
               shape: tuple[int, int], scale: int = 10, pixel_size: float = 1.0,
               threshold: float = 1 / 7) -> float:
    """FRC resolution of a ULM rendering: tracks are split by the parity of their id into
    two independent halves, each rendered as a density map on the ``scale``× grid, and the
    FRC of the two maps gives the resolution (units of ``pixel_size``, the acquisition
    pixel; NaN when the curve never falls below ``threshold``)."""
    from vasomics.ultrasound.ulm.render import render_tracks

    track = np.asarray(track)
    halves = []
    for parity in (0, 1):
        t = np.where((track >= 0) & (track % 2 == parity), track, -1)
        halves.append(render_tracks(t, frame, z, x, shape, scale).density)
    return frc(halves[0], halves[1], pixel_size / scale, threshold)[2]


def profile_widths(img: np.ndarray, pixel_size: float = 1.0, sigma: float = 1.0,
                   min_quantile: float = 0.8, max_points: int = 5000, half_length: float = 8.0,
                   seed: int = 0) -> np.ndarray:
    """Full widths at half maximum (units of ``pixel_size``) of vessel cross-sections.

    Ridge points are pixels whose Hessian (scale ``sigma`` pixels) has a strongly negative
    eigenvalue, that are maxima of the image along the corresponding eigenvector (the vessel
    normal) and are brighter than the ``min_quantile`` quantile of the non-zero pixels; at up
    to ``max_points`` of them (random, ``seed``) the profile along the normal (±
    ``half_length`` pixels, 0.1-pixel steps, linear interpolation) is cut at half of its
    height above the profile's minimum. Profiles that do not fall below half height on both
    sides are skipped. A resolution measure for single rendered maps (power Doppler vs ULM).
    """
    from skimage.feature import hessian_matrix, hessian_matrix_eigvals

    img = np.asarray(img, float)
    if img.ndim != 2:
        raise InputError(f"profile widths need a 2D image, got shape {img.shape}")
    H = hessian_matrix(img, sigma=sigma, order="rc", use_gaussian_derivatives=False)
    ev = hessian_matrix_eigvals(H)  # descending: ev[1] is the most negative
    hrr, hrc, hcc = H
    lam = ev[1]
    # eigenvector of lam: (hrc, lam − hrr) normalized (or (lam − hcc, hrc))
    nz_, nx_ = hrc, lam - hrr
    norm = np.hypot(nz_, nx_)
    nz_, nx_ = np.where(norm > 1e-12, nz_ / np.maximum(norm, 1e-12), 1.0), np.where(
        norm > 1e-12, nx_ / np.maximum(norm, 1e-12), 0.0)
    nonzero = img[img > 0]
    if nonzero.size == 0:
        return np.zeros(0)
    bright = img >= np.quantile(nonzero, min_quantile)
    zz, xx = np.nonzero(bright & (lam < 0) & (np.abs(lam) > np.abs(ev[0])))
    fw = ndimage.map_coordinates(img, [zz + nz_[zz, xx], xx + nx_[zz, xx]], order=1)
    bw = ndimage.map_coordinates(img, [zz - nz_[zz, xx], xx - nx_[zz, xx]], order=1)
    keep = (img[zz, xx] >= fw) & (img[zz, xx] >= bw)
    zz, xx = zz[keep], xx[keep]
    if zz.size > max_points:
        pick = np.random.default_rng(seed).choice(zz.size, max_points, replace=False)
        zz, xx = zz[pick], xx[pick]
    t = np.arange(-half_length, half_length + 1e-9, 0.1)
    nz, nx = nz_[zz, xx], nx_[zz, xx]
    prof = ndimage.map_coordinates(img, [(zz[:, None] + nz[:, None] * t[None]).ravel(),
                                         (xx[:, None] + nx[:, None] * t[None]).ravel()],
                                   order=1, mode="nearest").reshape(zz.size, t.size)
    c = t.size // 2
    peak = prof[:, c]
    half = prof.min(axis=1) + 0.5 * (peak - prof.min(axis=1))
    below = prof < half[:, None]
    right = np.argmax(below[:, c:], axis=1)
    left = np.argmax(below[:, c::-1], axis=1)
    ok = below[:, c:].any(axis=1) & below[:, c::-1].any(axis=1) & (peak > 0)
    return (right[ok] + left[ok]) * 0.1 * pixel_size


# --------------------------------------------------------------------------- vascular
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


def vascular_metrics(values: np.ndarray, pixel_size_mm: float | tuple[float, float],
                     threshold: float | None = None, roi: np.ndarray | None = None,
                     min_segment_mm: float | None = None) -> dict[str, float | np.ndarray]:
    """Vascular metrics of a rendered 2D map (density, counts or power).

    Vessels are ``values > threshold`` (default: Otsu on log values, :func:`binarize_map`;
    for ULM count maps ``threshold=0`` — every pixel crossed by a track — is the usual and
    more reproducible choice), within ``roi`` (default: the whole image). Returns vessel
    density (vessel area / ROI area), perfusion index (mean map value over the ROI / 99th
    percentile over vessel pixels: area and intensity together, in [0, 1]), box-counting fractal dimension (``vasomics.features.fractal``,
    boxes from 2 pixels to a quarter of the vessels' extent), and from the centreline graph of the mask
    (``vasomics.chain.graph.mask_to_graph``): diameters along the centrelines (2 × radius,
    mm), their median, and the median tortuosity L/D (arc length over chord) of segments
    at least ``min_segment_mm`` long (default 10 pixels).
    """
    from vasomics.chain.graph import mask_to_graph
    from vasomics.features.fractal import fractal_dimension

    values = np.nan_to_num(np.asarray(values, float))
    if values.ndim != 2:
        raise InputError(f"vascular metrics need a 2D map, got shape {values.shape}")
    spacing = tuple(float(v) for v in np.broadcast_to(np.asarray(pixel_size_mm, float), (2,)))
    mask = binarize_map(values, threshold)
    roi = np.ones(values.shape, bool) if roi is None else np.asarray(roi, bool)
    mask = mask & roi
    if not mask.any():
        raise InputError("no vessel pixels in the map (empty mask)")
    image = Image(mask.astype(np.uint8), spacing=spacing)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    side = max((rows[-1] - rows[0] + 1) * spacing[0], (cols[-1] - cols[0] + 1) * spacing[1])
    box_lo = 2.0 * max(spacing)  # boxes from 2 pixels to a quarter of the vessel extent
    fd, _ = fractal_dimension(mask, spacing, box_lo, max(box_lo, 0.25 * side))
    graph = mask_to_graph(image)
    lengths = graph.segment_lengths()
    chords = np.array([np.linalg.norm(graph.segment_points(i)[-1] - graph.segment_points(i)[0])
                       for i in range(graph.n_segments)])
    min_len = 10 * max(spacing) if min_segment_mm is None else min_segment_mm
    long = (lengths >= min_len) & (chords > 0)
    diameters = 2.0 * np.asarray(graph.radius, float)
    return {
        "vessel_density": float(mask.sum() / roi.sum()),
        "perfusion_index": float(values[roi].mean() / np.percentile(values[mask], 99)),
        "fractal_dimension": float(fd),
        "diameters_mm": diameters,
        "median_diameter_mm": float(np.median(diameters)) if diameters.size else float("nan"),
        "tortuosity": float(np.median(lengths[long] / chords[long])) if long.any()
        else float("nan"),
        "n_segments": int(graph.n_segments),
    }
