"""Fractal and texture phantoms of known box-counting dimension or lacunarity.

All return a ``uint8`` mask :class:`~vasomics.image.Image` (1 = foreground) with the given
``spacing`` (mm, NumPy order) and the analytic value. Three self-similar sets built from
``3**level`` cells per side, each keeping a pattern of the 3ᵈ sub-cells at every level:
Sierpinski carpet (2D, 8 of 9, dimension ``ln 8 / ln 3``), Menger sponge (3D, 20 of 27,
``ln 20 / ln 3``) and Cantor dust (the 2ᵈ corner sub-cells, ``d ln 2 / ln 3``). Each is either
axis-aligned with one voxel per cell (exact) or turned by any rotation and sampled at voxel
centres with cells of ``cell_voxels`` voxels; between the cell edge and the set's side the
dimension is the same. Last, a Bernoulli random field whose gliding-box lacunarity is
``1 + (1 − p) / (p bᵈ)`` for a box of ``b`` voxels per axis.
"""

from __future__ import annotations

import itertools

import numpy as np

from vasomics.errors import InputError
from vasomics.image import Image

SIERPINSKI_DIMENSION = float(np.log(8) / np.log(3))
MENGER_DIMENSION = float(np.log(20) / np.log(3))


def cantor_dimension(ndim: int) -> float:
    """Dimension of the Cantor dust in ``ndim`` dimensions: ``ndim ln 2 / ln 3``."""
    return float(ndim * np.log(2) / np.log(3))


def _check_level(level: int, ndim: int, top: int | None = None) -> None:
    top = top or (7 if ndim == 2 else 5)
    if not 1 <= level <= top:
        raise InputError(f"fractal level must be in 1..{top}, got {level}")


def _pattern(kind: str, ndim: int) -> np.ndarray:
    """Kept sub-cells (rows of digits 0..2) of one construction step: ``sponge`` (carpet /
    Menger: at most one digit 1) or ``dust`` (no digit 1)."""
    digits = np.array(list(itertools.product(range(3), repeat=ndim)), np.int64)
    ones = np.count_nonzero(digits == 1, axis=1)
    return digits[ones < 2] if kind == "sponge" else digits[ones == 0]


def _cells(kind: str, level: int, ndim: int) -> np.ndarray:
    """Integer coordinates (``0..3**level - 1``) of every kept cell, one row each."""
    pattern = _pattern(kind, ndim)
    cells = np.zeros((1, ndim), np.int64)
    for _ in range(level):
        cells = (3 * cells[:, None, :] + pattern[None, :, :]).reshape(-1, ndim)
    return cells


def _sponge(level: int, ndim: int) -> np.ndarray:
    """Axis-aligned carpet / sponge, one voxel per cell: keep a voxel unless, at some base-3
    digit position, at least two of its coordinates have digit 1."""
    n = 3 ** level
    keep = np.ones((n,) * ndim, bool)
    coord = np.arange(n)
    for _ in range(level):
        one = (coord % 3 == 1).astype(np.int8)
        ones = sum(one.reshape((-1,) + (1,) * (ndim - 1 - a)) for a in range(ndim))
        keep &= ones < 2
        coord = coord // 3
    return keep


def _render(cells: np.ndarray, level: int, cell_mm: float, spacing, rotation) -> np.ndarray:
    """Cells of edge ``cell_mm`` (the set spans ``3**level`` cells) turned by ``rotation``
    about the set's centre, which sits at the grid centre, sampled at voxel centres: a voxel
    is foreground when its centre falls in a kept cell. The grid is the rotated set's
    bounding box plus one voxel per side. Each cell tests only the voxels around it."""
    ndim = cells.shape[1]
    rot = np.asarray(rotation, float)
    if rot.shape != (ndim, ndim) or not np.allclose(rot @ rot.T, np.eye(ndim), atol=1e-9):
        raise InputError(f"rotation must be a {ndim}x{ndim} rotation matrix")
    spacing = np.asarray(spacing, float)
    side = 3 ** level * cell_mm
    half = 0.5 * side * np.abs(rot).sum(axis=1)  # half extent along each array axis
    shape = (2 * np.ceil(half / spacing) + 3).astype(np.int64)
    centre = (shape - 1) / 2
    reach = [np.arange(-k, k + 1) for k in np.ceil(0.5 * cell_mm * ndim ** 0.5 / spacing + 1)
             .astype(np.int64)]
    stencil = np.stack(np.meshgrid(*reach, indexing="ij"), axis=-1).reshape(-1, ndim)
    out = np.zeros(tuple(shape), bool)
    chunk = max(1, 2 ** 21 // len(stencil))
    for k in range(0, len(cells), chunk):
        c = cells[k:k + chunk]
        mid = ((c + 0.5) * cell_mm - 0.5 * side) @ rot.T  # cell centres, mm from grid centre
        vox = np.rint(mid / spacing + centre).astype(np.int64)[:, None, :] + stencil[None]
        local = ((vox - centre) * spacing) @ rot + 0.5 * side  # back into the set's frame
        hit = np.all(np.floor(local / cell_mm).astype(np.int64) == c[:, None, :], axis=2)
        out[tuple(vox[hit].T)] = True
    return out


def _fractal(kind: str, level: int, ndim: int, spacing, rotation, cell_voxels: float):
    spacing = (1.0,) * ndim if spacing is None else tuple(float(v) for v in spacing)
    if len(spacing) != ndim:
        raise InputError(f"spacing needs {ndim} values, got {len(spacing)}")
    if cell_voxels < 1:
        raise InputError(f"cell_voxels must be >= 1, got {cell_voxels}")
    if kind == "sponge" and rotation is None and cell_voxels == 1:
        array = _sponge(level, ndim)
    else:
        array = _render(_cells(kind, level, ndim), level, cell_voxels * max(spacing), spacing,
                        np.eye(ndim) if rotation is None else rotation)
    return Image(array.astype(np.uint8), spacing=spacing, modality="mask")


def sierpinski_carpet(level: int = 6, spacing=(1.0, 1.0), *, rotation=None,
                      cell_voxels: float = 1.0) -> tuple[Image, float]:
    """A Sierpinski carpet of ``3**level`` cells per side and its dimension ln 8 / ln 3.

    Without ``rotation`` and with ``cell_voxels = 1`` each cell is one pixel (exact). Else the
    carpet, with cells of ``cell_voxels`` × the largest spacing (mm), is turned by
    ``rotation`` (a ``(2, 2)`` matrix, e.g. :func:`~vasomics.phantoms.rotation_matrix`) and
    sampled at pixel centres."""
    _check_level(level, 2)
    return _fractal("sponge", level, 2, spacing, rotation, cell_voxels), SIERPINSKI_DIMENSION


def menger_sponge(level: int = 4, spacing=(1.0, 1.0, 1.0), *, rotation=None,
                  cell_voxels: float = 1.0) -> tuple[Image, float]:
    """A Menger sponge of ``3**level`` cells per side and its dimension ln 20 / ln 3
    (``rotation`` and ``cell_voxels`` as in :func:`sierpinski_carpet`, ``(3, 3)``)."""
    _check_level(level, 3)
    return _fractal("sponge", level, 3, spacing, rotation, cell_voxels), MENGER_DIMENSION


def cantor_dust(level: int = 5, spacing=(1.0, 1.0, 1.0), *, rotation=None,
                cell_voxels: float = 1.0) -> tuple[Image, float]:
    """Cantor dust (the product of middle-third Cantor sets) of ``3**level`` cells per side,
    2D or 3D after ``spacing``, and its dimension ``d ln 2 / ln 3`` (``rotation`` and
    ``cell_voxels`` as in :func:`sierpinski_carpet`)."""
    ndim = len(spacing)
    if ndim not in (2, 3):
        raise InputError(f"Cantor dust is 2D or 3D, got {ndim} spacing values")
    _check_level(level, ndim, 8 if ndim == 2 else 6)
    return _fractal("dust", level, ndim, spacing, rotation, cell_voxels), cantor_dimension(ndim)


def bernoulli_field(shape, p: float, seed: int = 0, spacing=None) -> Image:
    """Independent voxels, foreground with probability ``p`` (seeded)."""
    if not 0 < p < 1:
        raise InputError(f"probability must be in (0, 1), got {p}")
    rng = np.random.default_rng(seed)
    return Image((rng.random(shape) < p).astype(np.uint8), spacing=spacing, modality="mask")


def bernoulli_lacunarity(p: float, box_voxels: int, ndim: int) -> float:
    """Expected gliding-box lacunarity of a Bernoulli(p) field for a box of ``box_voxels``
    per axis: ``1 + (1 − p) / (p bᵈ)``."""
    return 1.0 + (1.0 - p) / (p * box_voxels ** ndim)
