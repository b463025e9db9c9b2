"""Speed of feature extraction alone (the graph is given), per module, on benchmark trees.

Cases (seeded :func:`vasomics.phantoms.random_tree`, 0.5 mm voxels, the same as
``bench_mask_to_graph.py``): ``512`` (2,047 segments, ~0.1 % foreground) and ``dense``
(4,095 segments, ~2 % foreground). For each: all graph features on the truth graph
(centerlines densely sampled), then all features with the mask (adds box counting and
lacunarity), with seconds per module and the process's peak RSS. The truth graph carries the
mask's spacing so centerlines are resampled at the pipeline's step (half a voxel). Numba kernels are warmed up
on a small mask first (their compile time is printed apart).

Run: ``python benchmarks/bench_features.py [--cases 512 dense]``.
"""

from __future__ import annotations

import argparse
import resource
import time

CASES = {
    "512": ((512, 512, 512), 11, 1.2, None),
    "dense": ((512, 512, 512), 12, 7.0, 1.4),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    from vasomics.features.extract import extract_features
    from vasomics.phantoms import random_tree, y_bifurcation

    t0 = time.perf_counter()
    small, truth = y_bifurcation(spacing=(1.0, 1.0, 1.0))
    extract_features(truth.graph, mask=small)
    print(f"warm-up (numba cache load/compile): {time.perf_counter() - t0:.2f} s")
    for name in args.cases:
        shape, generations, root_r, min_r = CASES[name]
        t0 = time.perf_counter()
        mask, truth = random_tree(shape=shape, spacing=(0.5, 0.5, 0.5), generations=generations,
                                  root_radius_mm=root_r, min_radius_mm=min_r, seed=0)
        # the source spacing sets the sampling step as for a graph extracted from the mask
        graph = truth.graph.replace(metadata={**truth.graph.metadata,
                                              "source_spacing": [0.5, 0.5, 0.5]})
        fg = int((mask.array != 0).sum())
        print(f"\n[{name}] phantom {time.perf_counter() - t0:.1f} s: {graph.n_segments} "
              f"segments, {len(graph.points)} centerline points, foreground "
              f"{100 * fg / mask.array.size:.2f} %")
        for label, kwargs in (("graph only", {}), ("graph + mask", {"mask": mask})):
            timings: dict = {}
            t0 = time.perf_counter()
            table = extract_features(graph, timings=timings, **kwargs)
            total = time.perf_counter() - t0
            per = ", ".join(f"{k} {v:.3f}" for k, v in timings.items())
            print(f"  {label:<13} {total:6.3f} s  ({len(table)} rows; {per})")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak RSS of the process so far: {rss:.0f} MB")


if __name__ == "__main__":
    main()
