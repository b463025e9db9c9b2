"""Real ULM maps: mouse brain at two time points (Wang et al., eLife 2024) and PALA's in-vivo
rat brain (Heiles et al. 2022) power Doppler versus ULM density."""

from __future__ import annotations

import numpy as np
import scipy.io
from PIL import Image

from vasomics.ultrasound.metrics import frc_single_image, vascular_metrics

#: The MAT files do not state the pixel size; 5 µm is assumed (metrics in mm scale with it,
#: vessel density and fractal dimension do not).
MOUSE_PIXEL_MM = 0.005
PALA_WAVELENGTH_MM = 0.0985  # README: power Doppler at ≈ λ, ULM at ≈ λ/10


def test_mouse_brain_metrics_two_time_points(shared_data):
    out = {}
    for week in (2, 3):
        m = scipy.io.loadmat(shared_data / "ulm_mouse_brain" / f"mouse04week{week}.mat",
                             squeeze_me=True, struct_as_record=False)["ULM_final"]
        out[week] = vascular_metrics(m.mapCounter.astype(float), MOUSE_PIXEL_MM)
    for r in out.values():
        assert 0.02 < r["vessel_density"] < 0.5
        assert 1.3 < r["fractal_dimension"] < 1.9
        assert r["diameters_mm"].size > 1000
    # same mouse one week apart: the architecture metrics stay close
    assert abs(out[2]["fractal_dimension"] - out[3]["fractal_dimension"]) < 0.15
    ratio = out[3]["vessel_density"] / out[2]["vessel_density"]
    assert 0.6 < ratio < 1.4


def test_pala_ulm_resolution_gain(shared_data):
    folder = shared_data / "pala_invivo_ratbrain"
    pd = np.asarray(Image.open(folder / "PALA_InVivoRatBrain_example_PowDop.tif").convert("L"),
                    float)
    ulm = np.asarray(Image.open(folder / "PALA_InVivoRatBrain_example_MatOut.tif").convert("L"),
                     float)
    res_ulm = frc_single_image(ulm, PALA_WAVELENGTH_MM / 10)
    res_pd = frc_single_image(pd, PALA_WAVELENGTH_MM)
    assert res_ulm < 0.5 * PALA_WAVELENGTH_MM  # sub-wavelength
    # the power Doppler never decorrelates above its 2-pixel Nyquist limit (2 λ)
    assert np.isnan(res_pd) or res_pd >= 2 * PALA_WAVELENGTH_MM
