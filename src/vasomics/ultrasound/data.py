"""Beamformed IQ ensembles: the complex frames × z × x stack every ultrasound stage starts from.

Conventions
-----------
* ``iq`` is complex64 in NumPy order ``(frames, z, x)``: ``z`` is depth (away from the
  probe), ``x`` is lateral. Pixel ``(i, j)`` has its centre at
  ``(origin_mm[0] + i·dz, origin_mm[1] + j·dx)`` mm.
* ``pixel_size_mm = (dz, dx)`` in mm, ``frame_rate_hz`` is the rate at which frames of the
  same steering angle follow each other (the Doppler pulse-repetition frequency of the
  ensemble), ``wavelength_mm = c / f0``.

Files (:func:`read_iq`)
-----------------------
* **NPZ / HDF5** (``.npz``, ``.h5``, ``.hdf5``): dataset ``iq`` (complex, ``(frames, z, x)``)
  and scalar datasets (HDF5: datasets or root attributes) ``pixel_size_mm`` (2 values,
  ``(dz, dx)``), ``frame_rate_hz``, optionally ``wavelength_mm``, ``center_frequency_hz``,
  ``sound_speed_m_s``, ``origin_mm``.
* **MAT** v5 (scipy.io) and v7.3 (HDF5 written by MATLAB, complex stored as a compound of
  ``real``/``imag``): the same variable names, but ``iq`` in MATLAB's habitual ``(z, x, frames)``
  order (as PALA and most MATLAB pipelines store IQ); vasomics transposes it.

Anything else raises :class:`~vasomics.errors.FormatError`; real-valued data, missing pixel
size or frame rate, too few frames, non-finite values and all-zero frames raise
:class:`~vasomics.errors.InputError` naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vasomics.errors import FormatError, InputError
from vasomics.io.atomic import atomic_file

log = logging.getLogger(__name__)

#: Fewest frames an ensemble may have: an SVD clutter filter needs a temporal dimension
#: larger than the tissue rank plus some blood components.
MIN_FRAMES = 8

_META_KEYS = ("pixel_size_mm", "frame_rate_hz", "wavelength_mm", "center_frequency_hz",
              "sound_speed_m_s", "origin_mm")


@dataclass(frozen=True, eq=False)
class IQEnsemble:
    """A validated complex IQ ensemble with its acquisition geometry.

    Parameters
    ----------
    iq:
        Complex array ``(frames, z, x)``; stored as complex64.
    pixel_size_mm:
        ``(dz, dx)`` in mm.
    frame_rate_hz:
        Frame (pulse-repetition) rate in Hz.
    wavelength_mm:
        Acoustic wavelength ``c / f0`` in mm (optional: needed for λ-based ULM defaults).
    center_frequency_hz:
        Transmit centre frequency f0 in Hz (optional: needed for Doppler velocities).
    sound_speed_m_s:
        Speed of sound in m/s (default 1540).
    origin_mm:
        Position ``(z, x)`` in mm of the centre of pixel ``(0, 0)``.
    min_frames:
        Fewest frames accepted (default :data:`MIN_FRAMES`).
    source:
        File the ensemble was read from (used in error messages only).
    """

    iq: np.ndarray
    pixel_size_mm: tuple[float, float]
    frame_rate_hz: float
    wavelength_mm: float | None = None
    center_frequency_hz: float | None = None
    sound_speed_m_s: float = 1540.0
    origin_mm: tuple[float, float] = (0.0, 0.0)
    min_frames: int = MIN_FRAMES
    source: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        src = self.source
        iq = np.asarray(self.iq)
        if not np.iscomplexobj(iq):
            raise InputError(f"IQ data must be complex (got real dtype {iq.dtype}); "
                             "pass beamformed IQ, not envelope or RF data", src)
        if iq.ndim != 3:
            raise InputError(f"IQ data must be 3D (frames, z, x), got shape {iq.shape}", src)
        if iq.shape[0] < self.min_frames:
            raise InputError(f"IQ ensemble has {iq.shape[0]} frames; at least "
                             f"{self.min_frames} are needed", src)
        if min(iq.shape[1:]) < 3:
            raise InputError(f"IQ frames of {iq.shape[1]}×{iq.shape[2]} pixels are too small", src)
        iq = iq.astype(np.complex64, copy=False)
        finite = np.isfinite(iq.real) & np.isfinite(iq.imag)
        if not finite.all():
            bad = np.flatnonzero(~finite.reshape(len(iq), -1).all(axis=1))
            raise InputError(f"IQ data hold NaN or infinite values in {bad.size} frame(s) "
                             f"(first: frame {bad[0]})", src)
        zero = ~np.any(iq.reshape(len(iq), -1) != 0, axis=1)
        if zero.any():
            raise InputError(f"IQ data hold {int(zero.sum())} all-zero frame(s) "
                             f"(first: frame {int(np.flatnonzero(zero)[0])}); drop them first",
                             src)
        ps = tuple(float(v) for v in np.ravel(self.pixel_size_mm))
        if len(ps) != 2 or not all(np.isfinite(v) and v > 0 for v in ps):
            raise InputError(f"pixel_size_mm must be two positive numbers (dz, dx), got {ps}", src)
        fr = float(self.frame_rate_hz)
        if not (np.isfinite(fr) and fr > 0):
            raise InputError(f"frame_rate_hz must be positive, got {fr}", src)
        for name in ("wavelength_mm", "center_frequency_hz"):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(float(v)) and float(v) > 0):
                raise InputError(f"{name} must be positive, got {v}", src)
        if not (np.isfinite(self.sound_speed_m_s) and self.sound_speed_m_s > 0):
            raise InputError(f"sound_speed_m_s must be positive, got {self.sound_speed_m_s}", src)
        wl, f0 = self.wavelength_mm, self.center_frequency_hz
        if wl is None and f0 is not None:
            wl = self.sound_speed_m_s / float(f0) * 1e3
        if f0 is None and wl is not None:
            f0 = self.sound_speed_m_s / float(wl) * 1e3
        object.__setattr__(self, "iq", iq)
        object.__setattr__(self, "pixel_size_mm", ps)
        object.__setattr__(self, "frame_rate_hz", fr)
        object.__setattr__(self, "wavelength_mm", None if wl is None else float(wl))
        object.__setattr__(self, "center_frequency_hz", None if f0 is None else float(f0))
        object.__setattr__(self, "origin_mm", tuple(float(v) for v in np.ravel(self.origin_mm)))

    @property
    def n_frames(self) -> int:
        return int(self.iq.shape[0])

    @property
    def frame_shape(self) -> tuple[int, int]:
        return int(self.iq.shape[1]), int(self.iq.shape[2])

    def metadata(self) -> dict:
        """The acquisition parameters as plain JSON-compatible data."""
        return {"pixel_size_mm": list(self.pixel_size_mm), "frame_rate_hz": self.frame_rate_hz,
                "wavelength_mm": self.wavelength_mm,
                "center_frequency_hz": self.center_frequency_hz,
                "sound_speed_m_s": self.sound_speed_m_s, "origin_mm": list(self.origin_mm),
                "shape": list(self.iq.shape)}


# --------------------------------------------------------------------------- reading
def read_iq(path: str | Path, min_frames: int = MIN_FRAMES) -> IQEnsemble:
    """Read an IQ ensemble from NPZ, HDF5 or MAT (v5 or v7.3); see the module docstring."""
    path = Path(path)
    if not path.is_file():
        raise InputError("IQ file not found", path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        fields, matlab_order = _read_npz(path), False
    elif suffix in (".h5", ".hdf5"):
        fields, matlab_order = _read_hdf5(path, matlab=False), False
    elif suffix == ".mat":
        fields, matlab_order = _read_mat(path), True
    else:
        raise FormatError(f"unsupported IQ file type '{suffix or '(none)'}'; use .npz, .h5, "
                          ".hdf5 or .mat", path)
    iq = fields.get("iq")
    if iq is None:
        raise InputError(f"no 'iq' variable (found: {sorted(fields) or 'nothing'})", path)
    iq = np.asarray(iq)
    if matlab_order and iq.ndim == 3:
        iq = np.moveaxis(iq, 2, 0)  # MATLAB (z, x, frames) -> (frames, z, x)
    for key in ("pixel_size_mm", "frame_rate_hz"):
        if fields.get(key) is None:
            raise InputError(f"'{key}' is missing; the file must state it", path)
    meta = {k: _scalar_or_vector(fields[k]) for k in _META_KEYS if fields.get(k) is not None}
    ens = IQEnsemble(iq=iq, min_frames=min_frames, source=str(path), **meta)
    log.info("read IQ ensemble %s: %s frames of %s×%s px", path.name, *ens.iq.shape)
    return ens


def read_steered_iq(path: str | Path) -> tuple[np.ndarray, IQEnsemble, np.ndarray]:
    """Read a multi-angle acquisition for vector flow: ``iq`` of shape ``(pairs, frames, z,
    x)`` (NPZ/HDF5; MAT: ``(z, x, frames, pairs)``) and ``angles_deg`` ``(pairs, 2)``
    (transmit, receive) degrees, plus the metadata of :func:`read_iq`. Returns the IQ
    (complex64), the first pair as a validated :class:`IQEnsemble` (carrying the metadata;
    every pair is validated the same way) and the angles."""
    path = Path(path)
    if not path.is_file():
        raise InputError("IQ file not found", path)
    suffix = path.suffix.lower()
    readers = {".npz": lambda: _read_npz(path), ".h5": lambda: _read_hdf5(path, False),
               ".hdf5": lambda: _read_hdf5(path, False), ".mat": lambda: _read_mat(path)}
    if suffix not in readers:
        raise FormatError(f"unsupported IQ file type '{suffix or '(none)'}'", path)
    fields = readers[suffix]()
    if suffix == ".mat" and fields.get("angles_deg") is not None:
        fields["angles_deg"] = np.asarray(fields["angles_deg"]).reshape(-1, 2)
    iq = fields.get("iq")
    angles = fields.get("angles_deg")
    if iq is None or angles is None:
        raise InputError("a steered acquisition needs 'iq' and 'angles_deg'", path)
    iq = np.asarray(iq)
    if suffix == ".mat" and iq.ndim == 4:
        iq = np.transpose(iq, (3, 2, 0, 1))
    angles = np.asarray(angles, float).reshape(-1, 2)
    if iq.ndim != 4 or iq.shape[0] != len(angles):
        raise InputError(f"steered IQ must be (pairs, frames, z, x) with one pair per row of "
                         f"angles_deg ({len(angles)}), got shape {iq.shape}", path)
    for key in ("pixel_size_mm", "frame_rate_hz"):
        if fields.get(key) is None:
            raise InputError(f"'{key}' is missing; the file must state it", path)
    meta = {k: _scalar_or_vector(fields[k]) for k in _META_KEYS if fields.get(k) is not None}
    ensembles = [IQEnsemble(iq=a, source=str(path), **meta) for a in iq]
    return np.stack([e.iq for e in ensembles]), ensembles[0], angles


def _scalar_or_vector(value):
    arr = np.asarray(value, dtype=float).ravel()
    return float(arr[0]) if arr.size == 1 else tuple(arr.tolist())


def _read_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise FormatError(f"cannot read NPZ file ({exc})", path) from None


def _h5_complex(data: np.ndarray) -> np.ndarray:
    """HDF5 compound ``(real, imag)`` (MATLAB v7.3 and h5py conventions) -> complex."""
    if data.dtype.names and {"real", "imag"} <= set(data.dtype.names):
        return data["real"] + 1j * data["imag"]
    if data.dtype.names and {"r", "i"} <= set(data.dtype.names):
        return data["r"] + 1j * data["i"]
    return data


def _read_hdf5(path: Path, matlab: bool) -> dict:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            out = {k: f.attrs[k] for k in f.attrs if k in _META_KEYS}
            for key in ("iq", "angles_deg", *_META_KEYS):
                if key in f and isinstance(f[key], h5py.Dataset):
                    arr = _h5_complex(f[key][()])
                    # MATLAB writes column-major: reverse the axes to get MATLAB's order back
                    out[key] = np.asarray(arr).T if matlab else arr
            return out
    except OSError as exc:
        raise FormatError(f"cannot read HDF5 file ({exc})", path) from None


def _read_mat(path: Path) -> dict:
    import scipy.io

    with open(path, "rb") as handle:
        head = handle.read(512)
    if b"MATLAB 7.3" in head or head[:8] == b"\x89HDF\r\n\x1a\n":
        return _read_hdf5(path, matlab=True)
    try:
        data = scipy.io.loadmat(path, squeeze_me=False)
    except (ValueError, NotImplementedError, OSError, IndexError, TypeError,
            scipy.io.matlab.MatReadError) as exc:
        # scipy raises IndexError/TypeError instead of MatReadError on some truncated headers
        raise FormatError(f"cannot read MAT file, truncated or corrupt ({type(exc).__name__}: {exc})",
                          path) from None
    return {k: v for k, v in data.items() if not k.startswith("__")}


# --------------------------------------------------------------------------- writing
def save_iq(ensemble: IQEnsemble, path: str | Path) -> Path:
    """Write an ensemble as NPZ or HDF5 (chosen by suffix), atomically."""
    path = Path(path)
    meta = {k: np.asarray(v) for k, v in ensemble.metadata().items()
            if k in _META_KEYS and v is not None}
    suffix = path.suffix.lower()
    with atomic_file(path) as tmp:
        if suffix == ".npz":
            with open(tmp, "wb") as handle:
                np.savez(handle, iq=ensemble.iq, **meta)
        elif suffix in (".h5", ".hdf5"):
            import h5py

            with h5py.File(tmp, "w") as f:
                f.create_dataset("iq", data=ensemble.iq)
                for k, v in meta.items():
                    f.create_dataset(k, data=v)
        else:
            raise FormatError(f"cannot write IQ as '{suffix}'; use .npz or .h5", path)
    return path
