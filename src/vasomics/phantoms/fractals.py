"""Fractal and texture phantoms of known box-counting dimension or lacunarity.

All return a ``uint8`` mask :class:`~vasomics.image.Image` (1 = foreground) with the given
``spacing`` (mm, NumPy order) and the analytic value: Sierpinski carpet (2D, dimension
``ln 8 / ln 3``), Menger sponge (3D, ``ln 20 / ln 3``), and a Bernoulli random field whose
gliding-box lacunarity is ``1 + (1 − p) / (p bᵈ)`` for a box of ``b`` voxels per axis.
"""

from __future__ import annotations

import numpy as np

from vasomics.errors import InputError
from vasomics.image import Image

SIERPINSKI_DIMENSION = float(np.log(8) / np.log(3))
MENGER_DIMENSION = float(np.log(20) / np.log(3))


def _check_level(level: int, ndim: int) -> None:
    if not 1 <= level <= (7 if ndim == 2 else 5):
        raise InputError(f"fractal level must be in 1..{7 if ndim == 2 else 5}, got {level}")


def _sponge(level: int, ndim: int) -> np.ndarray:
    """Keep a voxel unless, at some base-3 digit position, at least two of its coordinates
    have digit 1 (the removed middle crosses of the carpet / sponge construction)."""
    n = 3 ** level
    idx = np.indices((n,) * ndim)
    keep = np.ones((n,) * ndim, bool)
    for _ in range(level):
        ones = sum((c % 3 == 1).astype(np.int8) for c in idx)
        keep &= ones < 2
        idx = idx // 3
    return keep


def sierpinski_carpet(level: int = 5, spacing=(1.0, 1.0)) -> tuple[Image, float]:
    """A Sierpinski carpet of ``3**level`` pixels per side and its dimension ln 8 / ln 3."""
    _check_level(level, 2)
    return Image(_sponge(level, 2).astype(np.uint8), spacing=spacing,
                 modality="mask"), SIERPINSKI_DIMENSION


def menger_sponge(level: int = 4, spacing=(1.0, 1.0, 1.0)) -> tuple[Image, float]:
    """A Menger sponge of ``3**level`` voxels per side and its dimension ln 20 / ln 3."""
    _check_level(level, 3)
    return Image(_sponge(level, 3).astype(np.uint8), spacing=spacing,
                 modality="mask"), MENGER_DIMENSION


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
