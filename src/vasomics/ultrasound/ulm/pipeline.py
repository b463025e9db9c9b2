"""The ULM chain on a clutter-filtered stack: detect → localize → track → render.

Two parameter presets:

* :class:`ULMParams` defaults for contrast-enhanced ULM (microbubbles): the ``top_n`` = 40
  brightest maxima per frame, 5×5 patches, radial symmetry, links up to 1.5 pixels per
  frame, tracks of at least 5 localizations, a 10× super-resolved grid.
* :meth:`ULMParams.contrast_free`: localization of red-blood-cell speckle after SVD filtering
  (Jensen et al., "Fast super resolution ultrasound imaging using the erythrocytes",
  Proc. SPIE 12038, 2022; SURE imaging). Speckle maxima are dense, weak and decorrelate
  quickly, so every maximum within 12 dB of the frame maximum is kept (no top-N cap), links
  are restricted to 0.75 pixel per frame (erythrocyte displacements at high frame rate are
  small; a tight gate rejects speckle "jumps"), and only tracks persisting ≥ 8 frames are
  rendered (transient speckle maxima are not tracers).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field

from vasomics.params import StageParams
from vasomics.ultrasound.ulm.detect import detect_peaks, intensity_stack
from vasomics.ultrasound.ulm.localize import extract_patches, localize_patches
from vasomics.ultrasound.ulm.render import RenderedMaps, render_tracks
from vasomics.ultrasound.ulm.track import link

log = logging.getLogger(__name__)


class ULMParams(StageParams):
    """Parameters of the ULM chain (section ``ulm``); positions in acquisition pixels."""

    top_n: int | None = Field(40, ge=1, description="Brightest local maxima kept per frame "
                              "(None: all above the thresholds).")
    threshold: float = Field(0.0, ge=0, description="Absolute intensity a maximum must exceed.")
    relative_threshold_db: float | None = Field(None, le=0, description="Keep maxima within "
                                                "this many dB of the frame maximum.")
    patch_half: int = Field(2, ge=1, le=5, description="Half size of the localization patch "
                            "(2 = 5×5 pixels).")
    method: Literal["radial_symmetry", "weighted_average", "gaussian_fit", "no_shift"] = Field(
        "radial_symmetry", description="Sub-pixel localization estimator.")
    max_linking_distance: float = Field(1.5, gt=0, description="Largest displacement (pixels) "
                                        "between consecutive frames of a track.")
    max_gap: int = Field(0, ge=0, description="Frames a track may skip (gap closing).")
    min_track_length: int = Field(5, ge=1, description="Shortest track kept (localizations).")
    scale: int = Field(10, ge=1, le=50, description="Super-resolution factor of rendered maps.")

    @classmethod
    def contrast_free(cls, **changes) -> ULMParams:
        """Defaults for erythrocyte (contrast-free) localization; see the module docstring."""
        base = {"top_n": None, "relative_threshold_db": -12.0, "max_linking_distance": 0.75,
                "min_track_length": 8, "max_gap": 0}
        return cls(**{**base, **changes})


@dataclass(frozen=True)
class ULMResult:
    """Localizations (columnar, acquisition pixels, frames), their track ids (−1: discarded),
    velocity-free maps on the super-resolved grid and the time per stage (s)."""

    frame: np.ndarray
    z: np.ndarray
    x: np.ndarray
    intensity: np.ndarray
    track: np.ndarray
    maps: RenderedMaps
    seconds: dict = field(default_factory=dict)

    @property
    def n_tracks(self) -> int:
        return int(self.track.max() + 1) if self.track.size else 0


def localize_stack(data: np.ndarray, params: ULMParams) -> tuple[np.ndarray, ...]:
    """Detect and localize in a stack ``(frames, z, x)``; returns ``frame, z, x, intensity``
    (positions in pixels, float64)."""
    intensity = intensity_stack(data)
    det = detect_peaks(intensity, params.top_n, params.threshold, params.relative_threshold_db,
                       border=params.patch_half)
    patches = extract_patches(intensity, det.frame, det.z, det.x, params.patch_half)
    off = localize_patches(patches, params.method)
    return (det.frame, det.z + off[:, 0].astype(np.float64), det.x + off[:, 1].astype(np.float64),
            det.intensity)


def run_ulm(data: np.ndarray, params: ULMParams | None = None) -> ULMResult:
    """Full ULM chain on a clutter-filtered stack (complex IQ or magnitudes)."""
    params = params or ULMParams()
    t0 = time.perf_counter()
    frame, z, x, inten = localize_stack(data, params)
    t1 = time.perf_counter()
    track = link(frame, z, x, params.max_linking_distance, params.max_gap,
                 params.min_track_length)
    t2 = time.perf_counter()
    maps = render_tracks(track, frame, z, x, np.shape(data)[-2:], params.scale)
    t3 = time.perf_counter()
    seconds = {"localize": t1 - t0, "track": t2 - t1, "render": t3 - t2}
    log.info("ULM: %d localizations, %d tracks (%.2f s)", frame.size,
             int(track.max() + 1) if track.size else 0, t3 - t0)
    return ULMResult(frame, z, x, inten, track, maps, seconds)
