"""Accuracy of centerline shape features from masks (mask -> graph -> features) on phantoms
with analytic answers.

* helix masks: 5 (helix radius, pitch, tube radius) combinations x 2 spacings x 3 rotations;
  relative errors of VX.A.S.TORS_MEAN, CURV_MEAN, CURV_RMS, LEN, SOAM; NINFL must be 0;
* sinusoid masks with 10 mm straight leads at the end crests (2 x periods inflections, all
  away from the re-drawn vessel ends): 6 (amplitude, wavelength, periods) combinations x
  2 spacings x 3 rotations, 2D and 3D; exact VX.A.S.NINFL;
* crest-ended sinusoid masks (no leads): the same cases. The analytic count is the number
  of interior zeros of the curvature: y = A sin(2 pi x / lambda) on
  [lambda/4, lambda/4 + periods lambda] has kappa ~ -sin(2 pi x / lambda), zero at
  x = m lambda / 2, m = 1 .. 2 periods, none at the ends (crests, |kappa| maximal), so
  2 x periods. The end lobes are quarter-waves (lambda/4 along x); their points with
  kappa > 0.2 kappa_max (the NINFL test points) lie within 0.218 lambda of the tip, in the
  stretch the graph stage re-draws (the last ~(end_trim_radius_factor + 1) r). That
  stretch is refitted to cross-section centres up to end_cap_radius_factor r = 0.75 mm from
  the tip, and only lobes drawn within that last stretch are dropped (the former parabola
  through the trimmed skeleton end, with the shape features skipping ~7 mm at each end,
  gave 7/72 exact, all 126 lost inflections next to a vessel end: commit 341bb8c). Printed per inexact case: the analytic
  inflection positions (arc length), the lobes left (arc spans of their test points), the
  dropped end zone, and a tally of the lost inflections by place (first/last = next to a
  vessel end, or interior). The 9 inexact cases (63/72) lose an end lobe because the
  re-drawn end bends too little: on A = 1.5 mm, lambda = 25 mm the curvature read at the
  tip is 0.042 /mm against 0.108 on the analytic centerline through the same derivative
  window, though the re-drawn points lie within 0.1 mm of it (0.23 mm at the tip).
  Measured and not kept (session 21, crest / lead / zero-inflection counts, 63 / 72 / 72
  at the start): end-cap factor 1.0 (49 / 70 / 72); derivatives at free ends fitted
  without the last 0.5 / 1.0 / 1.5 r and extrapolated (65 / 72 / 72, 67 / 67 / 72,
  66 / 67 / 69); the end refit as a cubic (68 / 66 / 70), or a cubic only where its term
  passes an F-test at F > 5 (65 / 66 / 72) or F > 20 (unchanged): on the straight leads the
  voxel staircase makes the cubic term as significant as the crest's bend;
* zero-inflection masks: straight tubes (radius 1, 2, 3 mm), an arc, helices; NINFL = 0.

Run: ``python benchmarks/bench_centerline_shape.py [--parts helix lead crest zero]``.
"""

from __future__ import annotations

import argparse

import numpy as np

SINUSOIDS = [(5.0, 30.0, 3), (2.0, 30.0, 3), (8.0, 40.0, 2), (3.0, 20.0, 3), (1.5, 25.0, 2),
             (5.0, 30.0, 1)]
HELICES = [(8.0, 25.0, 1.5), (5.0, 15.0, 1.0), (10.0, 40.0, 2.0), (6.0, 40.0, 1.5),
           (12.0, 20.0, 2.0)]


def _spacings(ndim):
    return [(0.5, 0.5), (0.3, 0.3)] if ndim == 2 else [(0.5, 0.5, 0.5), (0.4, 0.3, 0.35)]


def helix_part():
    from vasomics.chain.graph import mask_to_graph
    from vasomics.features.extract import extract_features
    from vasomics.phantoms import helix_tube, random_rotation

    worst: dict[str, float] = {}
    for a, pitch, r in HELICES:
        b = pitch / (2 * np.pi)
        kappa, tau = a / (a * a + b * b), b / (a * a + b * b)
        for spacing in _spacings(3):
            for seed in (0, 2, 4):
                mask, truth = helix_tube(helix_radius_mm=a, pitch_mm=pitch, turns=2.0,
                                         radius_mm=r, spacing=spacing,
                                         rotation=random_rotation(seed))
                t = extract_features(mask_to_graph(mask), mask=mask)
                s = "segment:0"
                err = {"tors": t.value("VX.A.S.TORS_MEAN", s) / tau - 1,
                       "curv": t.value("VX.A.S.CURV_MEAN", s) / kappa - 1,
                       "rms": t.value("VX.A.S.CURV_RMS", s) / kappa - 1,
                       "len": t.value("VX.A.S.LEN", s) / truth.values["length_mm"] - 1,
                       "soam": t.value("VX.A.S.SOAM", s) / np.hypot(kappa, tau) - 1}
                for k, v in err.items():
                    worst[k] = max(worst.get(k, 0.0), abs(v))
                print(f"helix a={a} pitch={pitch} r={r} spacing={spacing} seed={seed}: "
                      + " ".join(f"{k}={v:+.3f}" for k, v in err.items())
                      + f" NINFL={t.value('VX.A.S.NINFL', s):.0f}", flush=True)
    print("helix worst |relative error|:", {k: round(v, 4) for k, v in worst.items()})


def _analytic_inflections(amplitude, wavelength, periods, lead_mm):
    """Arc length (mm, from either end: the curve is symmetric) of the curvature zeros of
    the sinusoid phantom, x = m lambda / 2 (m = 1 .. 2 periods)."""
    k = 2 * np.pi / wavelength
    x0 = wavelength / 4
    x = np.linspace(x0, x0 + periods * wavelength, 200_001)
    speed = np.sqrt(1 + (amplitude * k * np.cos(k * x)) ** 2)
    arc = np.concatenate([[0.0], np.cumsum((speed[1:] + speed[:-1]) / 2 * np.diff(x))])
    zeros = x0 + wavelength / 4 + wavelength / 2 * np.arange(2 * periods)
    return lead_mm + np.interp(zeros, x, arc)


def _lobes(graph):
    """VX.A.S.NINFL of segment 0 as computed by vasomics.features.segment.inflection_count,
    with the lobes left (arc spans of their test points) and the skipped end-zone length."""
    from vasomics.features import centerline as C
    from vasomics.features.context import Context
    from vasomics.features.params import FeatureParams, resolve_params
    from vasomics.features.segment import segment_quantile

    ctx = Context(graph, resolve_params(FeatureParams(), graph))
    cl = ctx.centerlines
    p90 = segment_quantile(ctx.curvature, cl.segment, cl.n_segments, 0.9)
    test = ctx.curved & (ctx.curvature > ctx.params.inflection_relative_threshold
                         * p90[cl.segment])
    lobes: dict = {}
    n = C.sign_changes(cl, C.bending_orientation(ctx.derivatives), test,
                       0.5 * ctx.params.derivative_window_mm, ctx.drawn_ends, lobes)
    skipped = ctx.drawn_ends & (cl.segment == 0) & (cl.s < 0.5 * cl.length[0])
    zone = float(cl.s[skipped].max()) if skipped.any() else 0.0
    return float(n[0]), lobes.get(0, []), zone, float(cl.length[0])


def sinusoid_part(lead_mm: float) -> None:
    from vasomics.chain.graph import mask_to_graph
    from vasomics.features.extract import extract_features
    from vasomics.phantoms import random_rotation, sinusoid_tube

    missing: dict[int, int] = {}
    lost = {"first/last": 0, "interior": 0}
    total = 0
    for ndim in (2, 3):
        for amplitude, wavelength, periods in SINUSOIDS:
            for spacing in _spacings(ndim):
                for seed in (0, 1, 2):
                    mask, truth = sinusoid_tube(amplitude_mm=amplitude,
                                                wavelength_mm=wavelength, periods=periods,
                                                spacing=spacing, lead_mm=lead_mm,
                                                rotation=random_rotation(seed, ndim))
                    graph = mask_to_graph(mask)
                    n = extract_features(graph).value("VX.A.S.NINFL", "segment:0")
                    n_lobes, lobes, zone, length = _lobes(graph)
                    assert n_lobes == n, (n_lobes, n)
                    expected = int(truth.values["inflection_count"])
                    miss = expected - int(n)
                    missing[miss] = missing.get(miss, 0) + 1
                    total += 1
                    if not miss:
                        continue
                    # a flip between two lobes left matches the nearest analytic zero
                    # (positions scaled to the measured length) within a quarter wave
                    s_true = _analytic_inflections(amplitude, wavelength, periods, lead_mm)
                    s_true = s_true * length / truth.values["length_mm"]
                    flips = [(hi + lo) / 2 for (_, hi), (lo, _)
                             in zip(lobes[:-1], lobes[1:], strict=True)]
                    matched = {int(np.argmin(np.abs(s_true - f))) for f in flips
                               if np.min(np.abs(s_true - f)) < wavelength / 4}
                    for m in set(range(expected)) - matched:
                        lost["first/last" if m in (0, expected - 1) else "interior"] += 1
                    print(f"  {ndim}D A={amplitude} lambda={wavelength} periods={periods} "
                          f"spacing={spacing} seed={seed}: {n:.0f} of {expected}; "
                          f"L={length:.1f} mm, dropped end zones {zone:.1f} mm; analytic "
                          f"inflections at s=" + ",".join(f"{v:.1f}" for v in s_true)
                          + "; lobes left " + " ".join(f"[{lo:.1f},{hi:.1f}]"
                                                       for lo, hi in lobes), flush=True)
    print(f"sinusoid masks, leads {lead_mm} mm: exact {missing.get(0, 0)}/{total}; cases by "
          f"number of inflections missed: {dict(sorted(missing.items()))}; lost inflections "
          f"by place: {lost}", flush=True)


def zero_part():
    from vasomics.chain.graph import mask_to_graph
    from vasomics.features.extract import extract_features
    from vasomics.phantoms import arc_tube, helix_tube, random_rotation, straight_tube

    zero = total = 0
    for ndim in (2, 3):
        for spacing in _spacings(ndim):
            for seed in (0, 1, 2):
                rot = random_rotation(seed, ndim)
                masks = [straight_tube(length_mm=40, radius_mm=r, spacing=spacing,
                                       rotation=rot)[0] for r in (1.0, 2.0, 3.0)]
                masks.append(arc_tube(spacing=spacing, rotation=rot)[0])
                if ndim == 3:
                    masks += [helix_tube(helix_radius_mm=a, pitch_mm=p, radius_mm=r,
                                         spacing=spacing, rotation=rot)[0]
                              for a, p, r in [(8, 25, 1.5), (5, 15, 1.0), (6, 40, 1.5),
                                              (4, 60, 1.0)]]
                for mask in masks:
                    n = extract_features(mask_to_graph(mask)).value("VX.A.S.NINFL",
                                                                    "segment:0")
                    total += 1
                    zero += n == 0
    print(f"zero-inflection masks (straight, arc, helix): NINFL = 0 in {zero}/{total}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = ["helix", "lead", "crest", "zero"]
    parser.add_argument("--parts", nargs="+", default=parts, choices=parts)
    args = parser.parse_args()
    if "helix" in args.parts:
        helix_part()
    if "lead" in args.parts:
        sinusoid_part(10.0)
    if "crest" in args.parts:
        sinusoid_part(0.0)
    if "zero" in args.parts:
        zero_part()


if __name__ == "__main__":
    main()
