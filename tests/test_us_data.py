"""IQ ensemble reading and validation (NPZ, HDF5, MAT v5, MAT v7.3) and bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io

from vasomics.errors import FormatError, InputError
from vasomics.ultrasound.data import IQEnsemble, read_iq, save_iq


def _iq(n=12, nz=10, nx=14, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, nz, nx)) + 1j * rng.standard_normal((n, nz, nx))).astype(
        np.complex64)


META = {"pixel_size_mm": np.array([0.1, 0.2]), "frame_rate_hz": 1000.0,
        "center_frequency_hz": 15.625e6}


def test_npz_and_hdf5_roundtrip(tmp_path):
    ens = IQEnsemble(_iq(), (0.1, 0.2), 1000.0, center_frequency_hz=15.625e6)
    for name in ("a.npz", "a.h5"):
        back = read_iq(save_iq(ens, tmp_path / name))
        np.testing.assert_array_equal(back.iq, ens.iq)
        assert back.pixel_size_mm == (0.1, 0.2) and back.frame_rate_hz == 1000.0
        assert back.wavelength_mm == pytest.approx(1540 / 15.625e6 * 1e3)


def test_mat_v5_is_matlab_order(tmp_path):
    iq = _iq()
    scipy.io.savemat(tmp_path / "a.mat", {"iq": np.moveaxis(iq, 0, 2), **META})
    back = read_iq(tmp_path / "a.mat")
    np.testing.assert_array_equal(back.iq, iq)


def test_mat_v73_compound_complex(tmp_path):
    iq = _iq()
    path = tmp_path / "b.mat"
    matlab = np.moveaxis(iq, 0, 2)  # MATLAB (z, x, frames), stored column-major
    comp = np.empty(matlab.T.shape, dtype=[("real", "<f4"), ("imag", "<f4")])
    comp["real"], comp["imag"] = matlab.T.real, matlab.T.imag
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("iq", data=comp)
        f.create_dataset("pixel_size_mm", data=META["pixel_size_mm"][None].T)
        f.create_dataset("frame_rate_hz", data=np.array([[1000.0]]))
    with open(path, "r+b") as handle:
        handle.write(b"MATLAB 7.3 MAT-file".ljust(128))
    back = read_iq(path)
    np.testing.assert_array_equal(back.iq, iq)
    assert back.pixel_size_mm == (0.1, 0.2)


def test_bad_inputs(tmp_path):
    np.savez(tmp_path / "real.npz", iq=np.abs(_iq()), **META)
    with pytest.raises(InputError, match="complex"):
        read_iq(tmp_path / "real.npz")
    np.savez(tmp_path / "nops.npz", iq=_iq(), frame_rate_hz=1000.0)
    with pytest.raises(InputError, match="pixel_size_mm"):
        read_iq(tmp_path / "nops.npz")
    np.savez(tmp_path / "nofr.npz", iq=_iq(), pixel_size_mm=[0.1, 0.1])
    with pytest.raises(InputError, match="frame_rate_hz"):
        read_iq(tmp_path / "nofr.npz")
    np.savez(tmp_path / "few.npz", iq=_iq(n=3), **META)
    with pytest.raises(InputError, match="frames"):
        read_iq(tmp_path / "few.npz")
    bad = _iq()
    bad[4, 2, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        IQEnsemble(bad, (0.1, 0.1), 1000.0)
    bad = _iq()
    bad[5] = 0
    with pytest.raises(InputError, match="all-zero frame"):
        IQEnsemble(bad, (0.1, 0.1), 1000.0)
    (tmp_path / "x.dcm").write_bytes(b"nope")
    with pytest.raises(FormatError, match="unsupported"):
        read_iq(tmp_path / "x.dcm")
    with pytest.raises(InputError, match="not found"):
        read_iq(tmp_path / "missing.npz")
    scipy.io.savemat(tmp_path / "cut.mat", {"iq": np.moveaxis(_iq(), 0, 2), **META})
    (tmp_path / "cut.mat").write_bytes((tmp_path / "cut.mat").read_bytes()[:12])
    with pytest.raises(FormatError, match="cut.mat: cannot read MAT file, truncated"):
        read_iq(tmp_path / "cut.mat")
