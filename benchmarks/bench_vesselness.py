"""3D vesselness speed, memory and agreement: vasomics vs skimage.filters.frangi vs ITK.

Each measurement runs in its own child process (spawn) so its peak RSS is its own.

1. vasomics Frangi, 4 scales (1, 2, 3, 4 mm), on a 300x512x512 float32 CT: the thoracic CT
   angiogram of the TotalSegmentator examples resampled to that grid (spacing 1.0 x 0.7 x 0.7
   mm); data from ``$VASOMICS_SHARED_DATA`` (default /work/shared/data).
2. On a 150x256x256 volume (spacing set to 1 mm so all three use the same sigmas in voxels):
   vasomics Frangi, ``skimage.filters.frangi`` (sigmas 1-4, black_ridges=False) and SimpleITK
   ``ObjectnessMeasure`` (line, bright, max over scales):
   time, peak RSS, speed ratio, Pearson correlation and Dice of the top 5 % voxels against
   vasomics. (SimpleITK 2.5 has no HessianRecursiveGaussian: its ObjectnessMeasure filter is
   fed the SmoothingRecursiveGaussian image times sigma^2, per scale, max over scales.)

Usage: ``python benchmarks/bench_vesselness.py [--threads 2] [--skip-large]
[--peers skimage,itk]``
The machine is shared: timings are noisy; the same run compares all methods.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time

import numpy as np

SCALES = [1.0, 2.0, 3.0, 4.0]


def ct_volume(shape, seed=0):
    """The thoracic CT angiogram of the TotalSegmentator examples (164x126x120, 1.5 mm)
    resampled (linear) to ``shape``, with a little noise so no two voxels tie."""
    from scipy import ndimage as ndi

    from vasomics.io.images import read_image

    root = os.environ.get("VASOMICS_SHARED_DATA", "/work/shared/data")
    ct = read_image(f"{root}/totalsegmentator_examples/aorta_report/test_result/models/"
                    "ct_cropped.nii.gz").array.astype(np.float32)
    vol = ndi.zoom(ct, [n / m for n, m in zip(shape, ct.shape, strict=True)], order=1)
    vol = vol[: shape[0], : shape[1], : shape[2]]
    return vol + np.random.default_rng(seed).normal(0, 5, vol.shape).astype(np.float32)


def _child(kind, shape, spacing, threads, queue):
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    vol = ct_volume(shape)
    t0 = time.perf_counter()
    if kind == "vasomics":
        import numba

        from vasomics.chain.segment.vesselness import vesselness

        numba.set_num_threads(threads)
        vesselness(vol[:20, :40, :40], spacing, scales_mm=SCALES)  # compile outside timing
        t0 = time.perf_counter()
        out = vesselness(vol, spacing, scales_mm=SCALES, method="frangi")
    elif kind == "skimage":
        from skimage.filters import frangi

        out = frangi(vol, sigmas=[s / spacing[0] for s in SCALES], black_ridges=False)
    else:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
        img = sitk.GetImageFromArray(vol)
        img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
        out = None
        for s in SCALES:
            # SimpleITK's ObjectnessMeasure takes the Hessian of its input (finite
            # differences): feed it the recursive-Gaussian-smoothed image times sigma^2
            # (scale normalization, as normalizeAcrossScale in ITK's HessianRecursiveGaussian).
            smooth = sitk.SmoothingRecursiveGaussian(img, s) * (s * s)
            obj = sitk.ObjectnessMeasureImageFilter()
            obj.SetObjectDimension(1)
            obj.SetBrightObject(True)
            obj.SetAlpha(0.5)
            obj.SetBeta(0.5)
            obj.SetGamma(5.0)
            obj.SetScaleObjectnessMeasure(True)
            hess = obj.Execute(sitk.Cast(smooth, sitk.sitkFloat32))
            arr = sitk.GetArrayFromImage(hess)
            out = arr if out is None else np.maximum(out, arr)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # GB
    np.save(f"/tmp/bench_vesselness_{kind}_{os.getpid()}.npy", out.astype(np.float32))
    queue.put((seconds, rss, f"/tmp/bench_vesselness_{kind}_{os.getpid()}.npy"))


def measure(kind, shape, spacing, threads):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(kind, shape, spacing, threads, q))
    p.start()
    p.join()  # the child only queues a small tuple, so joining first cannot deadlock
    if p.exitcode != 0:
        raise RuntimeError(f"{kind} measurement failed (exit code {p.exitcode})")
    seconds, rss, path = q.get()
    out = np.load(path)
    os.remove(path)
    return seconds, rss, out


def top_dice(a, b, frac=0.05):
    ta, tb = np.quantile(a, 1 - frac), np.quantile(b, 1 - frac)
    ma, mb = a > ta, b > tb
    return 2 * np.count_nonzero(ma & mb) / (np.count_nonzero(ma) + np.count_nonzero(mb))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--peers", default="skimage,itk", help="comma-separated: skimage, itk")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    if not args.skip_large:
        s, rss, _ = measure("vasomics", (300, 512, 512), (1.0, 0.7, 0.7), args.threads)
        print(f"vasomics frangi 4 scales 300x512x512: {s:.1f} s, peak RSS {rss:.2f} GB "
              f"(targets: <= 30 s, <= 6 GB)")
    shape, spacing = (150, 256, 256), (1.0, 1.0, 1.0)
    ours_s, ours_rss, ours = measure("vasomics", shape, spacing, args.threads)
    print(f"150x256x256 vasomics: {ours_s:.1f} s, {ours_rss:.2f} GB")
    for kind in [k for k in args.peers.split(",") if k]:
        s, rss, out = measure(kind, shape, spacing, args.threads)
        r = np.corrcoef(ours.ravel(), out.ravel())[0, 1]
        print(f"150x256x256 {kind}: {s:.1f} s, {rss:.2f} GB; vasomics speed-up x{s / ours_s:.1f}; "
              f"Pearson r {r:.3f}; top-5% Dice {top_dice(ours, out):.3f}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
