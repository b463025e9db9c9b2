"""``vasomics us doppler|ulm|vfi`` end to end on small simulated files."""

from __future__ import annotations

import json

import numpy as np

from vasomics.cli import main
from vasomics.phantoms.flow import (
    SteeredAcquisition,
    flow_phantom,
    horseshoe_vessels,
    poiseuille_tube,
    steered_iq,
)


def _bubble_iq(tmp_path):
    size = (32, 40)
    ph = flow_phantom(horseshoe_vessels(size), size, n_frames=60, bubbles_per_frame=5, seed=0)
    rng = np.random.default_rng(0)
    phase = np.exp(1j * rng.uniform(0, 2 * np.pi, ph.images.shape))
    tissue = 50 * np.exp(1j * rng.uniform(0, 2 * np.pi, size))[None] * np.ones((60, 1, 1))
    iq = (ph.images * phase + tissue).astype(np.complex64)
    path = tmp_path / "iq.npz"
    np.savez(path, iq=iq, pixel_size_mm=[0.1, 0.1], frame_rate_hz=1000.0,
             center_frequency_hz=15.625e6)
    return path


def test_us_doppler_and_ulm(tmp_path):
    path = _bubble_iq(tmp_path)
    assert main(["us", "doppler", str(path), "-o", str(tmp_path / "pd")]) == 0
    for name in ("power_doppler.nii.gz", "power_doppler.png", "color_doppler_m_s.nii.gz",
                 "params.yaml", "provenance.json"):
        assert (tmp_path / "pd" / name).is_file()
    # the same folder again from a file without a centre frequency: no colour Doppler, and
    # none of the earlier file's is left beside the new power Doppler
    with np.load(path) as f:
        np.savez(tmp_path / "no_fc.npz", iq=f["iq"], pixel_size_mm=f["pixel_size_mm"],
                 frame_rate_hz=f["frame_rate_hz"])
    assert main(["us", "doppler", str(tmp_path / "no_fc.npz"), "-o", str(tmp_path / "pd")]) == 0
    assert not any((tmp_path / "pd").glob("color_doppler*"))
    params = tmp_path / "p.yaml"
    params.write_text("svd:\n  low: 1\nulm:\n  top_n: 10\n  min_track_length: 3\n")
    assert main(["us", "ulm", str(path), "-o", str(tmp_path / "ulm"), "-p", str(params)]) == 0
    rec = json.loads((tmp_path / "ulm" / "provenance.json").read_text())
    assert rec["summary"]["tracks"] > 0
    assert "frc_resolution_mm" in rec["summary"]
    for name in ("density.nii.gz", "density.png", "direction_density.png", "velocity_mm_s.nii.gz",
                 "localizations.csv", "saturation.csv"):
        assert (tmp_path / "ulm" / name).is_file()


def test_us_vfi(tmp_path):
    acq = SteeredAcquisition()
    px = acq.wavelength_mm / 2
    pos, _ = poiseuille_tube((16 * px, 16 * px), 20.0, 1.0, 0.3, 8.0, seed=1)
    iq = steered_iq(pos, (32, 32), px, acq, n_frames=24, pad=16)
    path = tmp_path / "steered.h5"
    import h5py

    with h5py.File(path, "w") as f:
        f["iq"] = iq
        f["angles_deg"] = np.asarray(acq.angles)
        f["pixel_size_mm"] = [px, px]
        f["frame_rate_hz"] = acq.frame_rate_hz
        f["center_frequency_hz"] = acq.center_frequency_hz
    yaml = tmp_path / "p.yaml"
    yaml.write_text("svd:\n  low: 0\n")
    assert main(["us", "vfi", str(path), "-o", str(tmp_path / "v"), "-p", str(yaml)]) == 0
    assert (tmp_path / "v" / "wall_shear.csv").is_file()
    assert (tmp_path / "v" / "vz_m_s.nii.gz").is_file()


def test_us_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, iq=np.ones((20, 8, 8), np.float32), pixel_size_mm=[0.1, 0.1],
             frame_rate_hz=100.0)
    assert main(["us", "doppler", str(bad), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "complex" in err and "\n" not in err
    assert not (tmp_path / "o").exists()
