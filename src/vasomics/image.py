"""The :class:`Image`: a voxel array that always travels with its geometry.

Conventions (the same as ITK, SimpleITK and DICOM):

* ``array`` is in NumPy order: ``(z, y, x)`` for volumes, ``(y, x)`` for 2D images, with an
  optional trailing channel axis for colour images (``(y, x, 3)``).
* ``spacing`` is in millimetres, one value per *spatial* NumPy axis (so ``(sz, sy, sx)``).
* ``origin`` is the physical position in mm of the centre of voxel ``(0, 0, 0)``, given in
  ITK's ``(x, y, z)`` order in the LPS patient frame.
* ``direction`` is ITK's direction matrix: column ``j`` is the unit vector in physical space
  (LPS, ``(x, y, z)`` rows) along ITK index axis ``j``, where ITK axis 0 is the *last* NumPy
  axis (x, the fastest varying).

Physical coordinates returned by vasomics (centerline points, node positions) are always
LPS ``(x, y, z)`` in mm (``(x, y)`` in 2D), so they land where VMTK, 3D Slicer (after its
RAS flip) and ITK put them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from vasomics.errors import GeometryError, InputError

#: Spacings outside this range (mm) are rejected as absurd: 10 nm to 1 m per voxel.
SPACING_LIMITS_MM = (1e-5, 1e3)


@dataclass(frozen=True, eq=False)
class Image:
    """A 2D or 3D image (scalar or multi-channel) with its physical geometry.

    Parameters
    ----------
    array:
        Voxel values in NumPy order ``(z, y, x)`` or ``(y, x)``, optionally with a trailing
        channel axis (then ``array.ndim == len(spacing) + 1``).
    spacing:
        Voxel size in mm per spatial NumPy axis. Defaults to 1 mm.
    origin:
        Physical position (mm, LPS, ITK ``(x, y, z)`` order) of the centre of the first voxel.
    direction:
        ITK direction cosine matrix, shape ``(ndim, ndim)``; identity by default.
    modality:
        Free text such as ``"CT"``, ``"MR"``, ``"fundus"``, ``"OCTA"``, ``"mask"``.
    metadata:
        Safe (non-identifying) metadata only; readers fill it from an allow-list.
    """

    array: np.ndarray
    spacing: tuple[float, ...] | None = None
    origin: tuple[float, ...] | None = None
    direction: np.ndarray | None = None
    modality: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        array = np.asarray(self.array)
        if array.dtype == object or array.ndim < 2:
            raise InputError(f"image array must be 2D or 3D numeric, got shape {array.shape} "
                             f"and dtype {array.dtype}")
        spacing = self.spacing
        if spacing is None:
            spatial = min(array.ndim, 3)
            if array.ndim == 3 and array.shape[-1] in (3, 4):
                spatial = 2  # an RGB(A) image
            spacing = (1.0,) * spatial
        spacing = tuple(float(s) for s in np.ravel(spacing))
        ndim = len(spacing)
        if ndim not in (2, 3) or array.ndim not in (ndim, ndim + 1):
            raise GeometryError(f"spacing {spacing} does not fit an array of shape {array.shape}")
        lo, hi = SPACING_LIMITS_MM
        if not all(np.isfinite(s) and lo <= s <= hi for s in spacing):
            raise GeometryError(f"spacing {spacing} mm is not finite and positive within "
                                f"[{lo:g}, {hi:g}] mm")
        origin = (0.0,) * ndim if self.origin is None else tuple(float(o) for o in self.origin)
        if len(origin) != ndim or not all(np.isfinite(origin)):
            raise GeometryError(f"origin {origin} is not {ndim} finite numbers")
        direction = np.eye(ndim) if self.direction is None else np.asarray(self.direction, float)
        direction = direction.reshape(ndim, ndim)
        if not np.all(np.isfinite(direction)) or not np.allclose(
            direction.T @ direction, np.eye(ndim), atol=1e-3
        ):
            raise GeometryError("direction matrix is not orthonormal")
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "direction", direction)

    # ------------------------------------------------------------------ shape
    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (2 or 3)."""
        return len(self.spacing)

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape in NumPy order."""
        return self.array.shape[: self.ndim]

    @property
    def n_channels(self) -> int:
        """1 for scalar images, else the size of the trailing channel axis."""
        return 1 if self.array.ndim == self.ndim else self.array.shape[-1]

    @property
    def voxel_volume(self) -> float:
        """Volume (mm³) or area (mm²) of one voxel."""
        return float(np.prod(self.spacing))

    # ------------------------------------------------------------ geometry
    def index_to_physical(self, index: np.ndarray) -> np.ndarray:
        """Map voxel indices (``(N, ndim)``, NumPy order, may be fractional) to physical
        LPS coordinates in mm (``(N, ndim)``, ITK ``(x, y, z)`` order)."""
        index = np.atleast_2d(np.asarray(index, dtype=float))
        scaled = index[:, ::-1] * np.asarray(self.spacing[::-1])
        return scaled @ self.direction.T + np.asarray(self.origin)

    def physical_to_index(self, points: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`index_to_physical`: LPS mm ``(x, y, z)`` → fractional NumPy
        indices."""
        points = np.atleast_2d(np.asarray(points, dtype=float))
        local = (points - np.asarray(self.origin)) @ self.direction
        return (local / np.asarray(self.spacing[::-1]))[:, ::-1]

    def same_geometry(self, other: Image, rtol: float = 1e-4, atol_mm: float = 1e-3) -> bool:
        """True when both images share shape, spacing, origin and direction."""
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, rtol=rtol)
            and np.allclose(self.origin, other.origin, atol=atol_mm + rtol * max(self.spacing))
            and np.allclose(self.direction, other.direction, atol=1e-4)
        )

    def require_same_geometry(self, other: Image, what: str = "mask", path=None) -> None:
        """Raise :class:`GeometryError` when ``other`` (e.g. a mask) does not overlay this image."""
        if not self.same_geometry(other):
            raise GeometryError(
                f"{what} geometry (shape {other.shape}, spacing {_fmt(other.spacing)} mm, origin "
                f"{_fmt(other.origin)}) does not match the image (shape {self.shape}, spacing "
                f"{_fmt(self.spacing)} mm, origin {_fmt(self.origin)})",
                path,
            )

    def with_array(self, array: np.ndarray, **changes: Any) -> Image:
        """A new image on the same grid holding ``array`` (same spatial shape)."""
        array = np.asarray(array)
        if array.shape[: self.ndim] != self.shape:
            raise GeometryError(f"array of shape {array.shape} does not fit grid {self.shape}")
        return replace(self, array=array, **changes)

    def __repr__(self) -> str:
        return (f"Image(shape={self.array.shape}, dtype={self.array.dtype}, spacing="
                f"{_fmt(self.spacing)}, origin={_fmt(self.origin)}, modality={self.modality!r})")


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"
