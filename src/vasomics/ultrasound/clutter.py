"""Spatiotemporal (SVD) clutter filtering of IQ ensembles.

The ensemble ``(frames, z, x)`` is reshaped into the Casorati matrix ``S`` (pixels × frames;
vasomics stores its transpose, frames-major, see :func:`casorati`).
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
  subtracts the tissue projection ``S − S V_t V_tᴴ`` reusing the range finder's spatial
  coefficients (fastest for a tissue cut-off).

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
    """``(frames, z, x)`` -> frames-major Casorati matrix ``M`` (frames × pixels), a view.

    ``M`` is the transpose of the textbook Casorati matrix ``S`` (pixels × frames); with
    ``S = U Σ Vᴴ`` the left singular vectors of ``M`` are ``conj(V)``. Working on ``M`` keeps
    every product on contiguous memory and the output in ``(frames, z, x)`` order.
    """
    return iq.reshape(iq.shape[0], -1)


def temporal_basis(M: np.ndarray, solver: Solver = "eig", rank: int | None = None,
                   oversample: int = 10, power_iterations: int = 1,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Singular values σ (descending), temporal basis ``W`` (frames × k, orthonormal columns,
    ``W = conj(V)``) and, when the solver yields it for free, the spatial coefficients
    ``C = Wᴴ M`` (k × pixels; row i is σ_i·u_iᵀ), else None.

    ``rank`` limits the number of components (required for ``randomized``; the other solvers
    compute all and truncate).
    """
    n = M.shape[0]
    C = None
    if solver == "full":
        W, s, vh = np.linalg.svd(M, full_matrices=False)
        C = s[:, None].astype(M.real.dtype) * vh
    elif solver == "eig":
        M64 = M.astype(np.complex128, copy=False)  # float32 loses blood ≪ tissue energy
        w, W = np.linalg.eigh(M64 @ M64.conj().T)
        w, W = w[::-1], W[:, ::-1]
        s = np.sqrt(np.clip(w, 0, None))
    elif solver == "randomized":
        k = min(n, rank or n)
        ell = min(n, k + oversample)
        rng = np.random.default_rng(seed)
        omega = rng.standard_normal((M.shape[1], ell), np.float32)  # real test matrix
        Y = M @ omega.astype(M.dtype)
        for _ in range(power_iterations):
            Q, _ = np.linalg.qr(Y)
            Y = M @ (M.conj().T @ Q)
        Q, _ = np.linalg.qr(Y)
        B = Q.conj().T @ M
        # SVD of the small ℓ × pixels matrix through its ℓ × ℓ Gram matrix (LAPACK's SVD of
        # a very wide matrix is several times slower)
        g, ub = np.linalg.eigh((B @ B.conj().T).astype(np.complex128))
        g, ub = g[::-1], ub[:, ::-1].astype(M.dtype)
        s = np.sqrt(np.clip(g, 0, None))
        W = Q @ ub
        C = ub.conj().T @ B
    else:
        raise ParameterError(f"unknown SVD solver '{solver}' (use full, eig or randomized)")
    W = W.astype(M.dtype, copy=False)
    if rank is not None:
        s, W = s[:rank], W[:, :rank]
        C = None if C is None else C[:rank]
    return s.astype(np.float64), W, C


# --------------------------------------------------------------------------- thresholds
def spatial_similarity_matrix(C: np.ndarray) -> np.ndarray:
    """Baranger 2018 SSM (K × K) from spatial coefficients ``C`` (K × pixels, row i ∝ u_i):
    correlation coefficients between the magnitudes ``|u_i|``."""
    U = np.abs(C).astype(np.float64).T
    U = U - U.mean(axis=0)
    U /= np.maximum(np.linalg.norm(U, axis=0), np.finfo(float).tiny)
    return np.clip(U.T @ U, -1.0, 1.0)


def ssm_thresholds(ssm: np.ndarray) -> tuple[int, int]:
    """Cut-offs ``(n1, n2)``: tissue = components ``[0, n1)``, blood = ``[n1, n2)``.

    The binary model ``M`` is 1 on the squares ``[0, n1)²`` and ``[n1, n2)²``; the pair
    maximizing the Pearson correlation between ``M`` and the SSM over the off-diagonal
    elements is returned. All pairs are scored at once from a summed-area table (each score
    is O(1)).
    """
    K = ssm.shape[0]
    if K < 3:
        raise InputError(f"need at least 3 components for an automatic threshold, got {K}")
    sat = np.zeros((K + 1, K + 1))
    sat[1:, 1:] = ssm.cumsum(0).cumsum(1)

    def block(a, b):  # sum of the off-diagonal elements of ssm[a:b, a:b]
        return sat[b, b] - sat[a, b] - sat[b, a] + sat[a, a] - (b - a)

    n1 = np.arange(1, K)[:, None]
    n2 = np.arange(2, K + 1)[None, :]
    valid = n2 > n1
    n2b = np.where(valid, n2, n1 + 1)
    # the diagonal (all ones) carries no information and is left out of the correlation
    total, total2, N = ssm.sum() - K, (ssm ** 2).sum() - K, K * K - K
    s_cm = block(0, n1) + block(n1, n2b)
    s_m = n1 * (n1 - 1) + (n2b - n1) * (n2b - n1 - 1.0)
    num = s_cm - total * s_m / N
    den = np.sqrt(max(total2 - total ** 2 / N, 1e-300) * np.maximum(s_m - s_m ** 2 / N, 1e-300))
    score = np.where(valid, num / den, -np.inf)
    i, j = np.unravel_index(np.argmax(score), score.shape)
    return int(n1[i, 0]), int(n2[0, j])


# --------------------------------------------------------------------------- filtering
def _filter_casorati(M: np.ndarray, params: SVDParams) -> tuple[np.ndarray, tuple[int, int]]:
    """Filter the frames-major Casorati matrix; returns the blood part (same shape)."""
    n = M.shape[0]
    auto = params.low is None or params.auto_high
    if params.solver == "randomized":
        if params.auto_high:
            raise ParameterError("auto_high needs all components: use solver 'full' or 'eig'")
        rank = min(n, params.rank)
        if auto:
            rank = min(n, max(rank, params.ssm_components))
    else:
        rank = None
    sigma, W, C = temporal_basis(M, params.solver, rank, params.oversample,
                                 params.power_iterations, params.seed)
    low, high = params.low, params.high
    if auto:
        K = min(params.ssm_components, W.shape[1])
        CK = W[:, :K].conj().T @ M if C is None else C[:K]
        n1, n2 = ssm_thresholds(spatial_similarity_matrix(CK))
        low = n1 if low is None else low
        if params.auto_high and high is None:
            high = n2
    high = n if high is None else min(high, n)
    if not 0 <= low < high:
        raise ParameterError(f"SVD cut-offs low={low}, high={high} keep no component "
                             f"of {n} frames")
    if high == n:  # remove the tissue subspace (works with a truncated basis too)
        if low > W.shape[1]:
            raise ParameterError(f"randomized solver computed {W.shape[1]} components but "
                                 f"low={low}; raise 'rank'")
        Wt = W[:, :low]
        Ct = Wt.conj().T @ M if C is None else C[:low]
        out = _subtract_product(M, Wt, Ct)
    else:
        if high > W.shape[1]:
            raise ParameterError(f"high={high} exceeds the {W.shape[1]} computed components")
        Wb = W[:, low:high]
        Cb = Wb.conj().T @ M if C is None else C[low:high]
        out = Wb @ Cb
    return out, (low, high)


def _subtract_product(M: np.ndarray, W: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``M − W C`` in one BLAS call (gemm with β = 1 on a copy of ``M``)."""
    if W.shape[1] == 0:
        return M.copy()
    from scipy.linalg import blas

    gemm = {np.dtype(np.complex64): blas.cgemm, np.dtype(np.complex128): blas.zgemm}.get(M.dtype)
    if gemm is None or not M.flags.c_contiguous:
        return M - W @ C
    out_t = np.array(M.T, order="F", copy=True)  # (pixels, frames), Fortran order
    # out_t = −Cᵀ Wᵀ + Mᵀ = (M − W C)ᵀ
    out_t = gemm(-1.0, np.asfortranarray(C), np.asfortranarray(W), beta=1.0, c=out_t,
                 trans_a=1, trans_b=1, overwrite_c=1)
    return out_t.T


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
    if not np.isfinite(iq).all():
        raise InputError("SVD filter input holds NaN or infinite values")
    if params.block_size is None or params.block_size >= max(nz, nx):
        out, th = _filter_casorati(casorati(iq), params)
        result = out.reshape(n, nz, nx)
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
            acc[:, z0:z0 + bz, x0:x0 + bx] += out.reshape(n, bz, bx) * w
            wsum[z0:z0 + bz, x0:x0 + bx] += w
            used.append(th)
    result = acc / wsum
    log.debug("block-wise SVD: %d blocks, thresholds %s", len(used), used)
    return (result, used) if return_thresholds else result


def _triangle(m: int) -> np.ndarray:
    """Blending weights: a triangle peaking mid-block, never exactly zero."""
    t = np.arange(m) + 0.5
    return np.minimum(t, m - t) / (m / 2) + 1e-3
