"""Real ULM maps: mouse brain at two time points (Wang et al., eLife 2024) and PALA's in-vivo
rat brain (Heiles et al. 2022) power Doppler versus ULM density."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from PIL import Image

from vasomics.ultrasound.metrics import profile_widths, vascular_metrics

#: The MAT files do not state the pixel size; 5 µm is assumed (metrics in mm scale with it,
#: vessel density and fractal dimension do not).
MOUSE_PIXEL_MM = 0.005
PALA_WAVELENGTH_MM = 0.0985  # README: power Doppler at ≈ λ, ULM at ≈ λ/10


@pytest.mark.slow
def test_mouse_brain_metrics_two_time_points(shared_data):
    out = {}
    for week in (2, 3):
        m = scipy.io.loadmat(shared_data / "ulm_mouse_brain" / f"mouse04week{week}.mat",
                             squeeze_me=True, struct_as_record=False)["ULM_final"]
        # vessels = pixels crossed by at least one track
        out[week] = vascular_metrics(m.mapCounter.astype(float), MOUSE_PIXEL_MM, threshold=0)
    for r in out.values():
        assert 0.05 < r["vessel_density"] < 0.5
        assert 1.4 < r["fractal_dimension"] < 1.9
        assert 1.0 <= r["tortuosity"] < 1.5
        assert r["diameters_mm"].size > 1000 and r["n_segments"] > 1000
    # same mouse one week apart: architecture metrics stay close (measured: density 0.153 vs
    # 0.151, FD 1.687 vs 1.690, median diameter 13.1 vs 11.8 µm, tortuosity 1.086 vs 1.073)
    a, b = out[2], out[3]
    assert abs(b["vessel_density"] / a["vessel_density"] - 1) < 0.05
    assert abs(b["fractal_dimension"] - a["fractal_dimension"]) < 0.05
    assert abs(b["median_diameter_mm"] / a["median_diameter_mm"] - 1) < 0.2
    assert abs(b["tortuosity"] - a["tortuosity"]) < 0.05


def test_pala_ulm_resolution_gain(shared_data):
    folder = shared_data / "pala_invivo_ratbrain"
    pd = np.asarray(Image.open(folder / "PALA_InVivoRatBrain_example_PowDop.tif").convert("L"),
                    float)
    ulm = np.asarray(Image.open(folder / "PALA_InVivoRatBrain_example_MatOut.tif").convert("L"),
                     float)
    w_pd = profile_widths(pd, PALA_WAVELENGTH_MM)
    w_ulm = profile_widths(ulm, PALA_WAVELENGTH_MM / 10)
    assert w_pd.size > 200 and w_ulm.size > 1000
    # measured: median FWHM 315 µm (power Doppler) vs 54 µm (ULM)
    assert np.median(w_ulm) < PALA_WAVELENGTH_MM
    assert np.median(w_pd) > 2 * PALA_WAVELENGTH_MM
    assert np.median(w_ulm) < 0.25 * np.median(w_pd)
