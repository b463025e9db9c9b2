"""Which radius definition at a centerline voxel is unbiased? Measured, not assumed.

Candidates, with ``d`` the distance from the centerline voxel centre to the nearest
background voxel centre:

* ``d`` (vasomics: the foreground's exact distance transform value),
* ``d - s/2`` (boundary taken half a voxel inside the first background voxel),

1. Digitized discs (2D, unit pixels): radius R, centre at a random sub-pixel offset, pixel
   centres within R are foreground; the centerline pixel is the one nearest the centre.
2. 3D tubes from :mod:`vasomics.phantoms` at random orientations and spacings, through the
   full ``mask_to_graph``: median radius along the centerline minus the truth.

Run: ``python benchmarks/bench_radius_definition.py``.
"""

from __future__ import annotations

import numpy as np

from vasomics import phantoms as P
from vasomics.chain.graph import mask_to_graph


def discs() -> None:
    rng = np.random.default_rng(0)
    grid = np.mgrid[-15:16, -15:16].reshape(2, -1).T
    print("digitized discs (pixels): R, mean and max |error| of d and of d - 0.5")
    for radius in (1.2, 1.7, 2.2, 2.5, 3.0, 3.3, 4.1, 5.6, 7.3, 10.4):
        d = []
        for _ in range(300):
            centre = rng.uniform(-0.5, 0.5, 2)
            inside = ((grid - centre) ** 2).sum(axis=1) <= radius**2
            d.append(np.sqrt((grid[~inside] ** 2).sum(axis=1)).min())
        err = np.array(d) - radius
        print(f"  R={radius:5.1f}: d: mean {err.mean():+.3f} max {np.abs(err).max():.3f} | "
              f"d-0.5: mean {err.mean() - 0.5:+.3f} max {np.abs(err - 0.5).max():.3f}")


def tubes() -> None:
    print("3D tubes through mask_to_graph (median radius - truth, in voxels of the smallest "
          "spacing)")
    for spacing in ((0.5, 0.5, 0.5), (0.8, 0.5, 0.5)):
        for radius in (1.0, 1.6, 2.5, 4.0):
            errs = []
            for seed in range(4):
                mask, truth = P.straight_tube(40.0, radius, spacing,
                                              rotation=P.random_rotation(seed))
                g = mask_to_graph(mask)
                errs.append((np.median(g.radius) - radius) / min(spacing))
            errs = np.array(errs)
            print(f"  spacing {spacing}, r={radius} mm: d: {np.round(errs, 2)} | "
                  f"d-0.5 voxel: {np.round(errs - 0.5, 2)}")


if __name__ == "__main__":
    discs()
    tubes()
