"""The hepatic artery tree of the liver CT phantom (:mod:`vasomics.phantoms.liver_ct`).

Anatomy (physical LPS mm: ``x`` to the patient's left, ``y`` posterior, ``z`` superior). The
hepatic artery leaves the celiac trunk on the aorta's anterior wall about 20 mm above the
portal confluence, runs anteriorly and to the right to join the main portal vein at a
third of its course, and climbs alongside it to the hilum (common and proper hepatic artery:
no gastroduodenal artery is modelled, so the two form one vessel, ``hepatic_artery``). From
the hilum an artery accompanies every portal branch, as in the portal triads: the
``right_hepatic_artery`` the right portal vein and its branches (S5–S8), the
``left_hepatic_artery`` the left portal vein and its branches (S2–S4).

Calibre: the trunk radius ``r_root`` is drawn uniformly in [2.0, 2.5] mm; an artery
accompanying a portal branch of radius ``r_p`` has radius ``r_root × r_p / 7`` (7 mm: the
main portal vein), so the arteries taper with the portal tree from ~2.2 mm to ~0.6-0.9 mm;
branches thinner than ``min_radius_mm`` are not grown.

Position: at every portal branch point the artery lies along the unit vector ``n`` most
nearly perpendicular to all the vessels meeting there (the smallest right singular vector of
their unit directions, its sign towards anterior), at the distance that keeps its lumen a
``gap_mm`` wall away from every portal lumen there; along a branch the offset from the portal
centreline is interpolated between its two ends, kept perpendicular to the portal vein and
at least ``r_p + r_a + gap_mm`` long. The artery therefore touches no portal lumen in truth;
on a voxel grid coarser than the gap the two masks share faces (contacts the chain must
resolve by intensity).

The geometry uses its own random generator, so the venous trees, Hounsfield units and noise
of a phantom are those drawn without the artery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vasomics.phantoms.vessel_clearance import unit_tangents

#: Portal segment name → artery name for the segments an artery accompanies.
ARTERY_OF_PORTAL = {
    "main_portal_vein": "hepatic_artery",
    "right_portal_vein": "right_hepatic_artery",
    "right_anterior_portal_vein": "right_hepatic_artery",
    "right_posterior_portal_vein": "right_hepatic_artery",
    "portal_S5": "right_hepatic_artery", "portal_S6": "right_hepatic_artery",
    "portal_S7": "right_hepatic_artery", "portal_S8": "right_hepatic_artery",
    "left_portal_vein": "left_hepatic_artery", "portal_S2": "left_hepatic_artery",
    "portal_S3": "left_hepatic_artery", "portal_S4": "left_hepatic_artery",
}
ARTERY_NAMES = ("hepatic_artery", "right_hepatic_artery", "left_hepatic_artery")
MAIN_PORTAL_RADIUS_MM = 7.0


@dataclass
class ArteryTree:
    """Artery polylines (LPS mm, each ``(n, 3)``), radii per point (mm), parent segment
    indices (``-1`` at the root) and names (:data:`ARTERY_NAMES`)."""

    polylines: list = field(default_factory=list)
    radii: list = field(default_factory=list)
    parents: list = field(default_factory=list)
    names: list = field(default_factory=list)

    def add(self, points, radius, parent, name) -> int:
        self.polylines.append(np.asarray(points, float))
        self.radii.append(np.full(len(points), float(radius)))
        self.parents.append(int(parent))
        self.names.append(name)
        return len(self.polylines) - 1


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def hepatic_artery_tree(portal, aorta_xy, aorta_r: float, rng: np.random.Generator,
                        step_mm: float, min_radius_mm: float = 0.5,
                        gap_mm: float = 1.0) -> ArteryTree:
    """Grow the hepatic artery along the phantom's portal tree (module docstring).

    ``portal``: the portal tree builder (``polylines``, ``radii``, ``parents``, ``names``;
    every child starts at its parent's end point); ``aorta_xy``, ``aorta_r``: the aorta's
    axis (x, y) and radius (mm); ``rng``: the artery's own generator; ``step_mm``: point
    spacing of the extrahepatic trunk.
    """
    polys, radii, parents, names = (portal.polylines, portal.radii, portal.parents,
                                    portal.names)
    n_seg = len(polys)
    children = [[] for _ in range(n_seg)]
    for i, p in enumerate(parents):
        if p >= 0:
            children[p].append(i)
    r_root = float(rng.uniform(2.0, 2.5))
    main = names.index("main_portal_vein")
    r_art = {i: r_root * float(np.median(radii[i])) / MAIN_PORTAL_RADIUS_MM
             for i in range(n_seg)}
    follow = {i for i in range(n_seg) if _accompanied(i, main, parents)
              and r_art[i] >= min_radius_mm}
    def end_offset(i, start_offset):
        """Offset of the artery from the portal centreline at the end node of ``i``."""
        kids = [c for c in children[i] if c in follow]
        t_end = unit_tangents(polys[i])[-1]
        if not kids:  # terminal: keep the side the artery came from
            v = _perp(start_offset, t_end)
            if np.linalg.norm(v) < 1e-6:
                v = _perp(np.array([0.0, -1.0, 0.0]), t_end)
            return _unit(v) * (float(radii[i][-1]) + r_art[i] + gap_mm)
        dirs = [-t_end] + [unit_tangents(polys[c])[0] for c in kids]
        rads = [(float(radii[i][-1]), r_art[i])] + [(float(radii[c][0]), r_art[c])
                                                    for c in kids]
        return _node_offset(np.array(dirs), rads, gap_mm)

    tree = ArteryTree()
    # extrahepatic trunk: celiac origin on the aorta's anterior wall, ~20 mm above the
    # confluence, to a third of the main portal vein's course
    mpv = polys[main]
    k_join = len(mpv) // 3
    conf = mpv[0]
    origin = np.array([aorta_xy[0], aorta_xy[1] - aorta_r + 1.0, conf[2] + 20.0
                       + rng.uniform(-3, 3)])
    mpv_t = unit_tangents(mpv)
    main_end = end_offset(main, None)
    join_off = _perp(main_end, mpv_t[k_join])
    join_off *= (float(radii[main][k_join]) + r_root + gap_mm) / np.linalg.norm(join_off)
    join = mpv[k_join] + join_off
    # a cubic Bezier: out of the aorta anteriorly, into the join from the artery's side of
    # the portal vein (never through its lumen)
    ctrl1 = origin + np.array([0.0, -18.0, 4.0])
    ctrl2 = join + _unit(join_off) * 12.0 - mpv_t[k_join] * 6.0
    n = max(4, int(np.ceil(np.linalg.norm(join - origin) * 1.5 / step_mm)) + 1)
    t = np.linspace(0, 1, n)[:, None]
    cha = ((1 - t) ** 3 * origin + 3 * (1 - t) ** 2 * t * ctrl1 + 3 * (1 - t) * t ** 2 * ctrl2
           + t ** 3 * join)
    root = tree.add(cha, r_root, -1, "hepatic_artery")

    def grow(i, start_offset, k0, parent, o1=None):
        pts, rp = polys[i][k0:], radii[i][k0:]
        tang = unit_tangents(polys[i])[k0:]
        s = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
        s = s / max(s[-1], 1e-12)
        o0 = start_offset
        o1 = end_offset(i, start_offset) if o1 is None else o1
        off = (1 - s)[:, None] * o0 + s[:, None] * o1
        need = rp + r_art[i] + gap_mm
        for k in range(1, len(pts) - 1):
            v = _perp(off[k], tang[k])
            off[k] = v * max(float(np.linalg.norm(off[k])), float(need[k])) / \
                max(float(np.linalg.norm(v)), 1e-12)
        art = pts + off
        idx = tree.add(art, r_art[i], parent, ARTERY_OF_PORTAL.get(
            names[i], tree.names[parent] if parent >= 0 else "hepatic_artery"))
        for c in children[i]:
            if c in follow:
                grow(c, o1, 0, idx)

    grow(main, join_off, k_join, root, main_end)
    return tree


def _accompanied(i, main, parents) -> bool:
    """Segments at or below the main portal vein (the intrahepatic tree and its trunk)."""
    while i >= 0:
        if i == main:
            return True
        i = parents[i]
    return False


def _perp(v, t) -> np.ndarray:
    return np.asarray(v, float) - np.dot(v, t) * np.asarray(t, float)


def _node_offset(dirs: np.ndarray, rads, gap_mm: float) -> np.ndarray:
    """Offset (mm) of the artery from a portal node: along the direction most nearly
    perpendicular to every vessel there (sign anterior, -y), far enough that the artery
    lumen stays ``gap_mm`` from each portal lumen (``rads``: (portal, artery) radius per
    direction)."""
    dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    if len(dirs) >= 2:
        n = np.linalg.svd(dirs)[2][-1]
    else:  # one direction: the most anterior perpendicular
        n = _perp(np.array([0.0, -1.0, 0.0]), dirs[0])
    n = _unit(n)
    if n[1] > 0:
        n = -n
    dist = 0.0
    for d, (rp, ra) in zip(dirs, rads, strict=True):
        c = float(np.dot(n, d))
        sine = np.sqrt(max(1.0 - c * c, 0.25)) if c > 0 else 1.0
        dist = max(dist, (rp + ra + gap_mm) / sine)
    return n * dist


def paint_artery(labels: np.ndarray, tree: ArteryTree, spacing, origin, values: dict) -> None:
    """Paint the artery (label ``values["artery"]``) into the phantom's label volume in
    place, where no portal vein, IVC or aorta lies (those keep their voxels) and over the
    hepatic veins: the artery runs in the portal triads and is never inside a hepatic vein's
    lumen, so where the generated geometry makes the two cross the artery stays whole and
    the vein gives up those voxels (painted under the vein, the artery was cut there, in
    the arterial phase by a vein darker than the liver, and its subtree beyond was
    invisible to any method: up to a seventh of a tree's length on the arterial phantoms
    600-633)."""
    from vasomics.phantoms.raster import rasterize_tubes

    mask = rasterize_tubes(tree.polylines, tree.radii, labels.shape, spacing, origin=origin,
                           flat_caps=False)
    keep = np.isin(labels, [values[k] for k in ("portal", "ivc", "aorta")])
    labels[mask & ~keep] = values["artery"]
