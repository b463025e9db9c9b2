"""Ultrasound accuracy figures (the numbers behind tests/test_us_*.py), printed.

Run: ``python benchmarks/bench_us_accuracy.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import numpy as np

from vasomics.phantoms.flow import (
    SteeredAcquisition,
    flow_phantom,
    gap_vessels,
    horseshoe_vessels,
    point_grid,
    poiseuille_tube,
    rotating_disk,
    steered_iq,
)
from vasomics.ultrasound.metrics import gridding_index, pair_localizations, two_peak_dip
from vasomics.ultrasound.ulm import ULMParams, run_ulm
from vasomics.ultrasound.ulm.detect import detect_peaks
from vasomics.ultrasound.ulm.localize import extract_patches, localize_patches
from vasomics.ultrasound.vfi import VFIParams, vector_velocity, vorticity, wall_shear

METHODS = ("no_shift", "weighted_average", "radial_symmetry", "gaussian_fit")


def point_grid_rmse() -> None:
    for c in (-60, -30, -20, -10):
        row = []
        for m in METHODS:
            vals = []
            for seed in range(3):
                g = point_grid(clutter_db=c, seed=seed)
                d = detect_peaks(g.image, top_n=441, border=2)
                off = localize_patches(extract_patches(g.image, d.frame, d.z, d.x), m)
                r = pair_localizations(np.zeros(g.z.size), g.z, g.x, d.frame, d.z + off[:, 0],
                                       d.x + off[:, 1], pair_radius=1.0)
                vals.append(r.rmse)
            row.append(f"{m} {np.mean(vals):.3f}")
        print(f"point grid RMSE (λ) at {c} dB: " + ", ".join(row))


def flow_metrics() -> None:
    size = (64, 96)
    ph = flow_phantom(horseshoe_vessels(size), size, n_frames=400, bubbles_per_frame=8, seed=0)
    for m in METHODS:
        res = run_ulm(ph.images, ULMParams(method=m, top_n=None, relative_threshold_db=-12,
                                           min_track_length=1))
        p = pair_localizations(ph.frame, ph.z, ph.x, res.frame, res.z, res.x)
        print(f"horseshoe 30 dB {m}: Jaccard {p.jaccard:.3f} precision {p.precision:.3f} "
              f"recall {p.recall:.3f} RMSE {p.rmse:.3f} λ gridding index "
              f"{gridding_index(res.z, res.x):.2f} dB")
    size = (48, 24)
    for gap in (0.25, 0.5, 1.0):
        ph = flow_phantom(gap_vessels(gaps=(gap,), size=size), size, n_frames=600,
                          bubbles_per_frame=3, v_max=0.5, seed=3)
        res = run_ulm(ph.images, ULMParams(top_n=None, relative_threshold_db=-12,
                                           min_track_length=3, scale=20))
        prof = res.maps.density[int(0.2 * 48 * 20):int(0.8 * 48 * 20)].sum(axis=0)
        c = int(round((ph.vessels[0].points[0, 1] + gap / 2 + 0.5) * 20))
        print(f"gap {gap} λ: dip/peak {two_peak_dip(prof[c - 15:c + 15]):.2f} "
              f"(resolved < 0.75)")


def vfi_metrics() -> None:
    acq = SteeredAcquisition()
    px = acq.wavelength_mm / 2
    grid = np.meshgrid(np.arange(64) * px, np.arange(64) * px, indexing="ij")
    c = (32 * px, 32 * px)
    R, vmax = 2.0, 0.4
    for angle in (0.0, 30.0, 60.0):
        pos, vel = poiseuille_tube(c, angle, R, vmax, 14.0, seed=1)
        iq = steered_iq(pos, (64, 64), px, acq, n_frames=48, seed=2)
        tz, tx = vel(*grid)
        th = np.radians(angle)
        d = (grid[0] - c[0]) * np.cos(th) + (grid[1] - c[1]) * np.sin(th)
        along = -(grid[0] - c[0]) * np.sin(th) + (grid[1] - c[1]) * np.cos(th)
        sel = (np.abs(d) < 0.75 * R) & (np.abs(along) < 3)
        line = []
        for cal in ("speckle", "nominal"):
            f = vector_velocity(iq, (px, px), acq.frame_rate_hz, acq.center_frequency_hz,
                                acq.angles, params=VFIParams(calibration=cal))
            ez, ex = f.vz - tz, f.vx - tx
            line.append(f"{cal}: bias {np.hypot(ez[sel].mean(), ex[sel].mean()) / vmax:.3f} "
                        f"SD {np.sqrt(ez[sel].var() + ex[sel].var()) / vmax:.3f}")
            if cal == "speckle":
                ws = wall_shear(f, (px, px))
                near = np.abs(along[ws.z, ws.x]) < 3
                wsr = np.nanmedian(ws.shear_rate[near])
        print(f"tube {angle:.0f}°: " + "; ".join(line) + f" (of peak); WSR {wsr:.0f} 1/s vs "
              f"4·v_mean/R = {2 * vmax / R * 1e3:.0f}")
    pos, vel = rotating_disk(c, 3.0, 100.0, seed=4)
    iq = steered_iq(pos, (64, 64), px, acq, n_frames=64, seed=5)
    tz, tx = vel(*grid)
    r = np.hypot(grid[0] - c[0], grid[1] - c[1])
    f = vector_velocity(iq, (px, px), acq.frame_rate_hz, acq.center_frequency_hz)
    ez, ex = f.vz - tz, f.vx - tx
    sel = r < 2.4
    w = vorticity(f.vz, f.vx, (px, px))
    print(f"rotating disk: bias {np.hypot(ez[sel].mean(), ex[sel].mean()) / 0.3:.3f} SD "
          f"{np.sqrt(ez[sel].var() + ex[sel].var()) / 0.3:.3f} (of peak); vorticity "
          f"{np.median(w[r < 2]):.0f} 1/s vs 2Ω = 200")


if __name__ == "__main__":
    point_grid_rmse()
    flow_metrics()
    vfi_metrics()
