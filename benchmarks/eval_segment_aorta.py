"""Classical CTA aorta segmentation (``vasomics segment --method aorta``) against
TotalSegmentator's aorta mask: Dice, precision, recall, time and peak memory, and its
sensitivity to every parameter.

Data: ``totalsegmentator_examples/aorta_report/test_result/models/ct_cropped.nii.gz`` (thoracic
CT angiogram with aortic dissection, 1.5 mm isotropic, 164x126x120) and ``aorta.nii.gz`` beside
it (TotalSegmentator model output, true + false lumen; not a manual label). Each run is a fresh
child process, so its peak RSS (``ru_maxrss``) is its own. The method is deterministic (no
random seed); ``--perturb`` reruns it with each parameter of ``PERTURBED`` at 0.8x and 1.2x its
default (ints rounded), which is its instability. The non-contrast abdominal example must fail
with one line.

Usage: ``python benchmarks/eval_segment_aorta.py [--perturb]``

Measured 2026-12-02 on the shared 2-core machine under load (times are upper bounds: 2.9-13.7 s
per run, peak RSS 227-323 MB), reference volume 245.7 mL. Defaults: Dice 0.918, precision
0.919, recall 0.918, false-lumen recall 0.857, 245.5 mL; error voxels: FP 3534 within one
voxel of the reference surface + 2385 further, FN 4079 + 1915 deeper (before the lumen-edge
painting and partial-wall circles: Dice 0.843; FP 5509 + 7621, FN 4220 + 5979). The 44
perturbed settings:

===========================  =============  =============================  =============
setting (0.8x / 1.2x)        Dice           setting (0.8x / 1.2x)          Dice
===========================  =============  =============================  =============
smoothing_mm 0.6 / 0.9       0.913 / 0.912  opening_mm 2.4 / 3.6           0.917 / 0.910
lumen_min_hu 160 / 240       0.870 / 0.908  lumen_ceiling_ratio 1.6 / 2.4  0.910 / 0.919
fat_max_hu -24 / -36         0.914 / 0.913  axis_scale 0.48 / 0.72         0.918 / 0.918
seed_step_mm 3.6 / 5.4       0.918 / 0.918  wall_mm 1.2 / 1.8              0.916 / 0.916
seed_roundness 0.56 / 0.84   0.918 / 0.820  min_inlier_fraction 0.4 / 0.6  0.917 / 0.915
step_mm 1.6 / 2.4            0.915 / 0.919  arch_radius_min_mm 6.4 / 9.6   0.918 / 0.919
n_rays 51 / 77               0.913 / 0.914  arch_radius_ratio 1.2 / 1.8    0.918 / 0.918
plane_pixel_mm 0.6 / 0.9     0.917 / 0.911  arch_core_fraction 0.4 / 0.6   0.918 / 0.914
fit_tolerance_mm 1.6 / 2.4   0.914 / 0.917  path_smoothing 0.8 / 1.2       0.917 / 0.918
thrombus_min_mm 8 / 12       0.914 / 0.918  regularize_mm 16 / 24          0.919 / 0.918
min_wall_arc 0.2 / 0.3       0.915 / 0.912  root_max_radii 0.8 / 1.2       0.918 / 0.918
===========================  =============  =============================  =============

Range 0.820-0.919; without seed_roundness 0.84, 0.870-0.919 (the issue's 0.85 is met).
seed_roundness 0.84 rejects the dissected (oval) descending lumen on every slice, so no arch
pair is found and the fallback (seed tracks, consensus) gives 0.820 (0.48-0.80: 0.910-0.919).
lumen_min_hu 160 loses much of the partly opacified false lumen of the lower descending
aorta (false-lumen recall 0.79; 6.1k of its 10.6k missed voxels lie in the false lumen, slices
15-74). Non-contrast
``example_ct``: "no aorta-like structure: no round lumen above 200 HU ..." (one line).

Generalization checks (not in this script; commands in the session report): 3D-IRCADb-01
patient 1.1 labels rendered as an arterial CT (``ct_from_labels``, arterial phase, seeds
0/1, noise 12 HU; no arch in view, so the fallback tracker; 17-41 s for 512x512x129): Dice
0.749/0.768 (precision 0.98/0.98, recall 0.60/0.63; before: 0.738/0.748) against label 513,
which also holds the hepatic artery; the lowest 13-14 slices are missed. VMTK aorta MRA (MR
intensities, not HU): one-line "no aorta-like structure" error, as for any non-CT input.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.environ.get("VASOMICS_SHARED_DATA", "/work/shared/data")
CTA = f"{ROOT}/totalsegmentator_examples/aorta_report/test_result/models"

CHILD = r"""
import json, resource, sys, time
import numpy as np
from scipy import ndimage as ndi
from vasomics.chain.segment.aorta import AortaParams, segment_aorta
from vasomics.errors import VasomicsError
from vasomics.io.images import read_image
cta, kw, noncontrast = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
img = read_image(f"{cta}/ct_cropped.nii.gz")
ref = read_image(f"{cta}/aorta.nii.gz").array > 0
fl = read_image(f"{cta}/aorta_false_lumen.nii.gz").array > 0
t0 = time.perf_counter()
res = segment_aorta(img, AortaParams(**kw))
dt = time.perf_counter() - t0
m = res.mask.array
inter = int((m & ref).sum())
# error split: within one voxel of the reference surface (the edge) or further (the shape)
out_d = ndi.distance_transform_edt(~ref)
in_d = ndi.distance_transform_edt(ref)
fp, fn = m & ~ref, ref & ~m
out = {"dice": 2 * inter / (m.sum() + ref.sum()), "precision": inter / m.sum(),
       "recall": inter / ref.sum(), "false_lumen_recall": float((m & fl).sum() / fl.sum()),
       "volume_ml": float(m.sum() * np.prod(img.spacing) / 1000),
       "reference_ml": float(ref.sum() * np.prod(img.spacing) / 1000), "seconds": dt,
       "sections": len(res.sections), "fp_edge": int((fp & (out_d <= 1)).sum()),
       "fp_far": int((fp & (out_d > 1)).sum()), "fn_edge": int((fn & (in_d <= 1)).sum()),
       "fn_deep": int((fn & (in_d > 1)).sum()),
       "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
if noncontrast:
    try:
        segment_aorta(read_image(noncontrast))
        out["non_contrast"] = "FOUND (wrong)"
    except VasomicsError as exc:
        out["non_contrast"] = str(exc)
print(json.dumps(out))
"""

#: parameters varied by ``--perturb`` (each to 0.8 and 1.2 times its default)
PERTURBED = ("smoothing_mm", "lumen_min_hu", "fat_max_hu", "seed_step_mm", "seed_roundness",
             "step_mm", "n_rays", "plane_pixel_mm", "fit_tolerance_mm", "opening_mm",
             "lumen_ceiling_ratio", "axis_scale", "wall_mm", "min_inlier_fraction",
             "arch_radius_min_mm", "arch_radius_ratio", "arch_core_fraction", "path_smoothing",
             "regularize_mm", "root_max_radii", "thrombus_min_mm", "min_wall_arc")


def _run(kw: dict, noncontrast: str, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, CTA, json.dumps(kw), noncontrast],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from vasomics.chain.segment.aorta import AortaParams

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--perturb", action="store_true",
                    help="also run every parameter of PERTURBED at 0.8x and 1.2x its default")
    args = ap.parse_args()
    noncontrast = f"{ROOT}/totalsegmentator_examples/example_ct.nii.gz"
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    configs: list[dict] = [{}]
    if args.perturb:
        base = AortaParams()
        for name in PERTURBED:
            for f in (0.8, 1.2):
                val = getattr(base, name) * f
                configs.append({name: int(round(val)) if isinstance(getattr(base, name), int)
                                else round(val, 4)})
    print(f"{'setting':<28} {'Dice':>6} {'prec':>6} {'recall':>6} {'FL rec':>6} {'mL':>6} "
          f"{'ref mL':>6} {'s':>6} {'RSS MB':>7}")
    dices = []
    for kw in configs:
        r = _run(kw, noncontrast if not kw else "", env)
        dices.append(r["dice"])
        name = ",".join(f"{k}={v}" for k, v in kw.items()) or "defaults"
        print(f"{name:<28} {r['dice']:6.3f} {r['precision']:6.3f} {r['recall']:6.3f} "
              f"{r['false_lumen_recall']:6.3f} {r['volume_ml']:6.1f} {r['reference_ml']:6.1f} "
              f"{r['seconds']:6.1f} {r['peak_rss_mb']:7.0f}", flush=True)
        if not kw:
            print(f"error voxels: FP {r['fp_edge']} within 1 voxel of the reference surface + "
                  f"{r['fp_far']} further, FN {r['fn_edge']} + {r['fn_deep']} deeper")
            print(f"non-contrast example_ct: {r['non_contrast']}", flush=True)
    if len(dices) > 1:
        print(f"Dice over {len(dices)} settings: min {min(dices):.3f} max {max(dices):.3f}")


if __name__ == "__main__":
    main()
