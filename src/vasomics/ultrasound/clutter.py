"""Spatiotemporal (SVD) clutter filtering of IQ ensembles.

The ensemble ``(frames, z, x)`` is reshaped into the Casorati matrix ``S`` (pixels × frames).
Tissue dominates the largest singular components (high energy, slow, spatially coherent),
blood the intermediate ones and noise the smallest (Demené et al., "Spatiotemporal clutter
filtering of ultrafast ultrasound data highly increases Doppler and fUltrasound sensitivity",
IEEE TMI 34(11), 2015). The filter keeps components ``low .. high-1`` (0-based):
``S_blood = S · V_b · V_bᴴ`` with ``V_b`` the kept right (temporal) singular vectors.

Three solvers give the temporal basis behind one API (:func:`temporal_basis`):

* ``full``: LAPACK SVD of ``S`` (reference, slowest);
* ``eig``: eigen-decomposition of the frames × frames covariance ``Sᴴ S`` (fast when
  pixels ≫ frames, the usual case);
* ``randomized``: randomized range finder with power iterations (Halko, Martinsson & Tropp,
  SIAM Review 53(2), 2011) computing only the leading ``rank`` components; the filter then
  subtracts the tissue projection ``S − S V_t V_tᴴ`` (fastest for a tissue cut-off).

Automatic thresholds use the spatial similarity matrix (SSM) of Baranger et al., "Adaptive
spatiotemporal SVD clutter filtering for ultrafast Doppler imaging using similarity of
spatial singular vectors", IEEE TMI 37(7), 2018: ``C[i, j]`` is the correlation coefficient
of the magnitudes of spatial singular vectors ``|u_i|`` and ``|u_j|``. Tissue and blood form
two bright squares on its diagonal; the cut-offs are the corners of the two-square binary
model best correlated with ``C``. vasomics evaluates the correlation of *every* candidate
pair ``(n1, n2)`` at once from a summed-area table of ``C`` (O(K²) for K components instead
of O(K⁴)), which is the fast search.

Large fields of view are filtered block-wise (:func:`svd_filter` with ``block_size``):
overlapping square blocks, each with its own basis (and threshold when automatic), blended
with separable triangular weights.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from pydantic import Field

from vasomics.errors import InputError, ParameterError
from vasomics.params import StageParams

log = logging.getLogger(__name__)

Solver = Literal["full", "eig", "randomized"]


class SVDParams(StageParams):
    """Parameters of the SVD clutter filter (section ``svd`` of a parameter file)."""

    solver: Solver = Field("eig", description="Temporal basis solver: 'full' SVD, 'eig' "
                           "(covariance eigen-decomposition) or 'randomized'.")
    low: int | None = Field(None, ge=0, description="First kept component (0-based) = number "
                            "of tissue components removed; None = automatic (SSM).")
    high: int | None = Field(None, ge=1, description="End (exclusive) of kept components; "
                             "None = keep all (or automatic when auto_high).")
    auto_high: bool = Field(False, description="Also cut noise components at the SSM's blood/"
                            "noise corner (needs solver 'full' or 'eig').")
    ssm_components: int = Field(128, ge=4, description="Components whose spatial similarity "
                                "matrix the automatic search examines.")
    rank: int = Field(64, ge=2, description="Components the randomized solver computes "
                      "(must exceed the tissue cut-off).")
    oversample: int = Field(10, ge=0, description="Randomized solver: extra random vectors.")
    power_iterations: int = Field(1, ge=0, description="Randomized solver: power iterations.")
    block_size: int | None = Field(None, ge=8, description="Side (pixels) of square blocks for "
                                   "block-wise filtering; None = whole field of view.")
    block_overlap: float = Field(0.5, ge=0.0, lt=1.0, description="Overlap fraction of "
                                 "neighbouring blocks.")
    seed: int = Field(0, description="Seed of the randomized solver.")


# --------------------------------------------------------------------------- basis
def casorati(iq: np.ndarray) -> np.ndarray:
    """``(frames, z, x)`` -> Casorati matrix ``(pixels, frames)`` (a view when possible)."""
    n = iq.shape[0]
    return iq.reshape(n, -1).T


def temporal_basis(S: np.ndarray, solver: Solver = "eig", rank: int | None = None,
                   oversample: int = 10, power_iterations: int = 1,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Singular values (descending) and right singular vectors ``V`` (frames × k) of ``S``.

    ``rank`` limits the number of components (required for ``randomized``; the other solvers
    compute all and truncate). Columns of ``V`` are orthonormal; ``S V = U diag(σ)``.
    """
    n_pix, n = S.shape
    if solver == "full":
        _, s, vh = np.linalg.svd(S, full_matrices=False)
        V = vh.conj().T
    elif solver == "eig":
        S64 = S.astype(np.complex128, copy=False)  # float32 loses blood ≪ tissue energy
        w, V = np.linalg.eigh(S64.conj().T @ S64)
        w, V = w[::-1], V[:, ::-1]
        s = np.sqrt(np.clip(w, 0, None))
    elif solver == "randomized":
        k = min(n, rank or n)
        ell = min(n, k + oversample)
        rng = np.random.default_rng(seed)
        omega = (rng.standard_normal((n, ell)) + 1j * rng.standard_normal((n, ell)))
        Y = S @ omega.astype(S.dtype)
        for _ in range(power_iterations):
            Q, _ = np.linalg.qr(Y)
            Z, _ = np.linalg.qr(S.conj().T @ Q)
            Y = S @ Z
        Q, _ = np.linalg.qr(Y)
        B = Q.conj().T @ S
        _, s, vh = np.linalg.svd(B, full_matrices=False)
        V = vh.conj().T
    else:
        raise ParameterError(f"unknown SVD solver '{solver}' (use full, eig or randomized)")
    if rank is not None:
        s, V = s[:rank], V[:, :rank]
    return s.astype(np.float64), V.astype(S.dtype, copy=False)


# --------------------------------------------------------------------------- thresholds
def spatial_similarity_matrix(S: np.ndarray, V: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Baranger 2018 SSM: correlation coefficients between ``|u_i|`` (K × K)."""
    U = np.abs(S @ V).astype(np.float64)
    U = U - U.mean(axis=0)
    U /= np.maximum(np.linalg.norm(U, axis=0), np.finfo(float).tiny)
    return np.clip((U.T @ U).astype(np.float64), -1.0, 1.0)


def ssm_thresholds(ssm: np.ndarray) -> tuple[int, int]:
    """Cut-offs ``(n1, n2)``: tissue = components ``[0, n1)``, blood = ``[n1, n2)``.

    The binary model ``M`` is 1 on the squares ``[0, n1)²`` and ``[n1, n2)²``; the pair
    maximizing the Pearson correlation between ``M`` and the SSM is returned. All pairs are
    scored at once from a summed-area table (each score is O(1)).
    """
    K = ssm.shape[0]
    if K < 3:
        raise InputError(f"need at least 3 components for an automatic threshold, got {K}")
    sat = np.zeros((K + 1, K + 1))
    sat[1:, 1:] = ssm.cumsum(0).cumsum(1)

    def block(a, b):  # sum of ssm[a:b, a:b]
        return sat[b, b] - sat[a, b] - sat[b, a] + sat[a, a]

    n1 = np.arange(1, K)[:, None]
    n2 = np.arange(2, K + 1)[None, :]
    valid = n2 > n1
    n2b = np.where(valid, n2, n1 + 1)
    total, total2, N = ssm.sum(), (ssm ** 2).sum(), K * K
    s_cm = block(0, n1) + block(n1, n2b)
    s_m = n1 ** 2 + (n2b - n1) ** 2.0
    num = s_cm - total * s_m / N
    den = np.sqrt(max(total2 - total ** 2 / N, 1e-300) * np.maximum(s_m - s_m ** 2 / N, 1e-300))
    score = np.where(valid, num / den, -np.inf)
    i, j = np.unravel_index(np.argmax(score), score.shape)
    return int(n1[i, 0]), int(n2[0, j])


# --------------------------------------------------------------------------- filtering
def _filter_casorati(S: np.ndarray, params: SVDParams) -> tuple[np.ndarray, tuple[int, int]]:
    n = S.shape[1]
    auto = params.low is None or params.auto_high
    if params.solver == "randomized":
        if params.auto_high:
            raise ParameterError("auto_high needs all components: use solver 'full' or 'eig'")
        rank = min(n, params.rank)
        if auto:
            rank = min(n, max(rank, params.ssm_components))
    else:
        rank = None
    sigma, V = temporal_basis(S, params.solver, rank, params.oversample,
                              params.power_iterations, params.seed)
    low, high = params.low, params.high
    if auto:
        K = min(params.ssm_components, V.shape[1])
        n1, n2 = ssm_thresholds(spatial_similarity_matrix(S, V[:, :K], sigma[:K]))
        low = n1 if low is None else low
        if params.auto_high and high is None:
            high = n2
    high = n if high is None else min(high, n)
    if not 0 <= low < high:
        raise ParameterError(f"SVD cut-offs low={low}, high={high} keep no component "
                             f"of {n} frames")
    if high == n:  # remove the tissue subspace (works with a truncated basis too)
        if low > V.shape[1]:
            raise ParameterError(f"randomized solver computed {V.shape[1]} components but "
                                 f"low={low}; raise 'rank'")
        Vt = V[:, :low]
        out = S - (S @ Vt) @ Vt.conj().T
    else:
        if high > V.shape[1]:
            raise ParameterError(f"high={high} exceeds the {V.shape[1]} computed components")
        Vb = V[:, low:high]
        out = (S @ Vb) @ Vb.conj().T
    return out, (low, high)


def _block_starts(size: int, block: int, step: int) -> list[int]:
    if block >= size:
        return [0]
    starts = list(range(0, size - block + 1, step))
    if starts[-1] != size - block:
        starts.append(size - block)
    return starts


def svd_filter(iq: np.ndarray, params: SVDParams | None = None,
               return_thresholds: bool = False):
    """Clutter-filter an IQ ensemble ``(frames, z, x)``; returns the blood signal (complex64,
    same shape), and with ``return_thresholds`` also the list of ``(low, high)`` used per
    block (one entry without blocks)."""
    params = params or SVDParams()
    iq = np.asarray(iq)
    if not np.iscomplexobj(iq) or iq.ndim != 3:
        raise InputError(f"SVD filter needs complex IQ (frames, z, x), got {iq.dtype} "
                         f"{iq.shape}")
    n, nz, nx = iq.shape
    if n < 3:
        raise InputError(f"SVD filter needs at least 3 frames, got {n}")
    iq = iq.astype(np.complex64, copy=False)
    if params.block_size is None or params.block_size >= max(nz, nx):
        out, th = _filter_casorati(casorati(iq), params)
        result = np.ascontiguousarray(out.T).reshape(n, nz, nx)
        return (result, [th]) if return_thresholds else result
    b = params.block_size
    step = max(1, int(round(b * (1 - params.block_overlap))))
    acc = np.zeros((n, nz, nx), np.complex64)
    wsum = np.zeros((nz, nx), np.float32)
    used = []
    for z0 in _block_starts(nz, b, step):
        for x0 in _block_starts(nx, b, step):
            blk = iq[:, z0:z0 + b, x0:x0 + b]
            bz, bx = blk.shape[1:]
            out, th = _filter_casorati(casorati(np.ascontiguousarray(blk)), params)
            w = np.outer(_triangle(bz), _triangle(bx)).astype(np.float32)
            acc[:, z0:z0 + bz, x0:x0 + bx] += out.T.reshape(n, bz, bx) * w
            wsum[z0:z0 + bz, x0:x0 + bx] += w
            used.append(th)
    result = acc / wsum
    log.debug("block-wise SVD: %d blocks, thresholds %s", len(used), used)
    return (result, used) if return_thresholds else result


def _triangle(m: int) -> np.ndarray:
    """Blending weights: a triangle peaking mid-block, never exactly zero."""
    t = np.arange(m) + 0.5
    return np.minimum(t, m - t) / (m / 2) + 1e-3
