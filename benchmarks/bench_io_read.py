"""Read speed of a 512³ uint8 vessel-like mask: vasomics.read_image vs SimpleITK and nibabel.

Usage: python benchmarks/bench_io_read.py [--size 512] [--repeats 3]

The mask holds about 2,000 random tubes (≈0.1–0.3 % foreground, like the issue-2 benchmark
tree). Each reader is timed best-of-N on the same files (written once to a temporary folder);
"to array" means until a writable NumPy array in (z, y, x) order exists. Peak memory is the
growth of the peak RSS (VmHWM, Linux) of a fresh process over its value after the imports
(one process per reader and file).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def tubes_mask(size: int, n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros((size,) * 3, dtype=np.uint8)
    starts = rng.uniform(8, size - 8, (n, 3))
    dirs = rng.normal(size=(n, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    lengths = rng.uniform(10, 40, n)
    radii = rng.integers(1, 3, n)
    offsets = np.stack(np.meshgrid(*[np.arange(-2, 3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    for s, d, length, r in zip(starts, dirs, lengths, radii, strict=True):
        t = np.arange(0, length, 0.5)[:, None]
        pts = np.rint(s + t * d).astype(int)
        ball = offsets[np.linalg.norm(offsets, axis=1) <= r]
        vox = (pts[:, None, :] + ball[None]).reshape(-1, 3)
        vox = vox[np.all((vox >= 0) & (vox < size), axis=1)]
        mask[vox[:, 0], vox[:, 1], vox[:, 2]] = 1
    return mask


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        del out
    return min(times)


READERS = {
    "vasomics": "from vasomics.io.images import read_image; f = lambda p: read_image(p).array",
    "sitk": "import SimpleITK as s; f = lambda p: s.GetArrayFromImage(s.ReadImage(p))",
    "nibabel": "import nibabel as n, numpy as np; "
               "f = lambda p: np.asarray(n.load(p).dataobj).T.copy()",
}


def peak_mb(reader: str, path: Path) -> float:
    """Extra peak RSS (MB) of reading ``path`` once in a fresh process (``VmHWM`` from
    /proc: ``ru_maxrss`` would carry the parent's high-water mark across exec)."""
    hwm = ("(lambda: int([l for l in open('/proc/self/status') "
           "if l.startswith('VmHWM')][0].split()[1]))")
    code = (f"{READERS[reader]}; hwm = {hwm}; base = hwm(); a = f({str(path)!r}); "
            "print((hwm() - base) / 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip())


def main() -> None:
    import nibabel as nib
    import SimpleITK as sitk

    from vasomics.image import Image
    from vasomics.io.images import read_image, write_image

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    mask = tubes_mask(args.size)
    print(f"mask {mask.shape}, foreground {mask.mean() * 100:.2f} %, load "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    image = Image(mask, spacing=(0.5, 0.5, 0.5))
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for ext in (".nii.gz", ".nii", ".nrrd", ".mha"):
            path = write_image(image, Path(tmp) / f"mask{ext}")
            size_mb = path.stat().st_size / 1e6
            ours = best_of(lambda p=path: read_image(p).array, args.repeats)
            itk = best_of(lambda p=path: sitk.GetArrayFromImage(sitk.ReadImage(str(p))),
                          args.repeats)
            if ext.startswith(".nii"):
                nibabel = best_of(lambda p=path: np.asarray(nib.load(p).dataobj).T.copy(),
                                  args.repeats)
            else:
                nibabel = float("nan")
            assert np.array_equal(read_image(path).array, mask)
            mem = [peak_mb(r, path) for r in ("vasomics", "sitk")]
            mem.append(peak_mb("nibabel", path) if ext.startswith(".nii") else float("nan"))
            rows.append((ext, size_mb, ours, itk, nibabel, *mem))
    print(f"{'format':8s} {'file MB':>8s} {'vasomics s':>11s} {'SimpleITK s':>12s} "
          f"{'nibabel s':>10s}   peak MB: {'vasomics':>8s} {'SimpleITK':>9s} {'nibabel':>8s}")
    for ext, size_mb, ours, itk, nibabel, m1, m2, m3 in rows:
        print(f"{ext:8s} {size_mb:8.2f} {ours:11.3f} {itk:12.3f} {nibabel:10.3f}   "
              f"{'':9s}{m1:8.0f} {m2:9.0f} {m3:8.0f}")


if __name__ == "__main__":
    main()
