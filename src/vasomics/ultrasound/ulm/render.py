"""Rendering tracks on a super-resolved grid: density, direction-coded density, velocity.

Tracks are interpolated linearly between consecutive localizations with a step of at most
half a super-resolved pixel, so a track draws a continuous line; each super-resolved pixel
counts at most once per track (density = number of distinct tracks through the pixel, as in
Heiles et al. 2022 and Errico et al., Nature 527, 2015). Direction coding splits the density
by the sign of the axial velocity (positive: towards the probe, i.e. decreasing z, "upward
flow"). The velocity map is the mean speed of the samples falling in each pixel.

Positions are pixels of the acquisition grid; the super-resolved grid has ``scale`` pixels
per acquisition pixel, the centre of acquisition pixel (0, 0) at super-resolved position
``((scale − 1)/2, (scale − 1)/2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RenderedMaps:
    """Maps on the super-resolved grid (float32, (Z·scale, X·scale)); ``velocity`` in the
    ``pixel_size`` units given to :func:`render_tracks` per frame (NaN where no track
    passes)."""

    density: np.ndarray
    density_up: np.ndarray
    density_down: np.ndarray
    velocity: np.ndarray
    scale: int

    @property
    def direction_coded(self) -> np.ndarray:
        """Density signed by flow direction: + towards the probe, − away from it."""
        return self.density_up - self.density_down


def _track_samples(track, frame, z, x, scale):
    sel = np.flatnonzero(track >= 0)
    order = sel[np.lexsort((frame[sel], track[sel]))]
    a, b = order[:-1], order[1:]
    same = track[a] == track[b]
    a, b = a[same], b[same]
    dz, dx = z[b] - z[a], x[b] - x[a]
    dt = np.maximum(frame[b] - frame[a], 1)
    length = np.hypot(dz, dx) * scale
    nsamp = np.maximum(np.ceil(length / 0.5).astype(np.int64), 1)
    seg = np.repeat(np.arange(a.size), nsamp)
    start = np.cumsum(nsamp) - nsamp
    frac = (np.arange(seg.size) - start[seg]) / nsamp[seg]
    sz = z[a][seg] + frac * dz[seg]
    sx = x[a][seg] + frac * dx[seg]
    vz, vx = (dz / dt)[seg], (dx / dt)[seg]
    # the end point of every track, with the velocity of its last segment
    last_seg = np.r_[np.flatnonzero(track[b[1:]] != track[b[:-1]]), b.size - 1]
    last = b[last_seg]
    return (np.r_[sz, z[last]], np.r_[sx, x[last]], np.r_[vz, (dz / dt)[last_seg]],
            np.r_[vx, (dx / dt)[last_seg]], np.r_[track[a][seg], track[last]])


def render_tracks(track: np.ndarray, frame: np.ndarray, z: np.ndarray, x: np.ndarray,
                  shape: tuple[int, int], scale: int = 10,
                  pixel_size: tuple[float, float] = (1.0, 1.0)) -> RenderedMaps:
    """Render tracked localizations (pixel units) onto a ``scale``× finer grid; the velocity
    map is in ``pixel_size`` units (e.g. mm) per frame (default: pixels per frame)."""
    track, frame = np.asarray(track), np.asarray(frame)
    Z, X = shape[0] * scale, shape[1] * scale
    empty = np.zeros((Z, X), np.float32)
    kept = track[track >= 0]
    if kept.size < 2 or np.unique(kept).size == kept.size:
        return RenderedMaps(empty, empty.copy(), empty.copy(), np.full((Z, X), np.nan,
                            np.float32), scale)
    sz, sx, vz, vx, tid = _track_samples(track, frame, np.asarray(z, float),
                                         np.asarray(x, float), scale)
    iz = np.floor((sz + 0.5) * scale).astype(np.int64)
    ix = np.floor((sx + 0.5) * scale).astype(np.int64)
    ok = (iz >= 0) & (iz < Z) & (ix >= 0) & (ix < X)
    iz, ix, vz, vx, tid = iz[ok], ix[ok], vz[ok], vx[ok], tid[ok]
    pix = iz * X + ix
    # one count per (track, pixel)
    key = tid.astype(np.int64) * (Z * X) + pix
    _, first = np.unique(key, return_index=True)
    up = vz[first] < 0
    density = np.bincount(pix[first], minlength=Z * X).reshape(Z, X).astype(np.float32)
    d_up = np.bincount(pix[first][up], minlength=Z * X).reshape(Z, X).astype(np.float32)
    d_down = density - d_up
    speed = np.hypot(vz * pixel_size[0], vx * pixel_size[1])
    ssum = np.bincount(pix, weights=speed, minlength=Z * X)
    cnt = np.bincount(pix, minlength=Z * X)
    with np.errstate(invalid="ignore", divide="ignore"):
        vel = np.where(cnt > 0, ssum / np.maximum(cnt, 1), np.nan).reshape(Z, X)
    return RenderedMaps(density, d_up, d_down, vel.astype(np.float32), scale)
