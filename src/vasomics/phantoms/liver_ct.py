"""A CT-like abdominal phantom with portal and hepatic venous trees, in four contrast phases.

Geometry (physical LPS mm, identity direction; ``x`` to the patient's left, ``y`` posterior,
``z`` superior; the liver centre sits near the origin):

* body: elliptic cylinder with subcutaneous fat, a muscle wall and a mixed-density abdominal
  background; a vertebral column (cancellous core, cortical shell) and paraspinal muscles;
  ribs (bone arcs in the wall from the renal poles up) and the lung bases (air above a
  diaphragm that domes over liver and spleen, reaching lowest in the posterior recesses), as
  in the upper-abdominal slab of a real CT;
* liver: right lobe and left lobe ellipsoids (patient right, upper abdomen) cut behind the
  inferior vena cava, spleen (left, posterior), kidneys, aorta (left of the midline, anterior
  to the spine), inferior vena cava (right, in a groove on the back of the liver, running up
  to the diaphragm);
* portal venous tree: superior mesenteric vein (SMV, root, from below) and splenic vein (from
  the splenic hilum) join at the confluence; the main portal vein runs to the hilum and
  divides into the right portal vein (right anterior → S5/S8, right posterior → S6/S7) and the
  left portal vein (S2, S3, S4); each segmental branch grows a seeded random subtree that
  stays in the liver; a segmental branch drawn out of the liver is shortened, or, where it
  would keep less than half its length, turned into its lobe (no stubs without a subtree);
* hepatic venous tree: right, middle and left hepatic veins leave the intrahepatic IVC near
  the diaphragm and branch towards the liver's periphery; the portal tree is then bent
  where it ran closer than ``VENOUS_CLEARANCE_MM`` (1 mm) to a hepatic vein's lumen, or
  through it (:func:`vasomics.phantoms.vessel_clearance.keep_apart`);
* hepatic artery (optional, ``hepatic_artery=True``): from the celiac trunk on the aorta
  alongside the main portal vein to the hilum, then beside every portal branch
  (:mod:`vasomics.phantoms.hepatic_artery`).

Every truth segment is named (``main_portal_vein``, ``right_portal_vein``,
``right_anterior_portal_vein``, ``portal_S5`` ... for the portal tree, ``right_hepatic_vein``
... for the hepatic tree, ``splenic_vein``, ``superior_mesenteric_vein``); segments of a
segmental subtree carry their segment's name. Radii follow Murray's law at every bifurcation.

Rendering: a label volume is mapped to Hounsfield units drawn per phase from
:func:`sample_enhancement` (a timing model with a shared bolus-timing factor and per-organ
jitter), blurred by a Gaussian point-spread function (partial volume) and overlaid with
spatially correlated Gaussian noise of a stated standard deviation (HU).

Truth at the scan's scale (:func:`truth_features`, :func:`naming_accuracy`; see
:func:`vasomics.phantoms.truth.liver_tree_truth`): no grown branch is thinner than
``min_radius_mm`` (default: the largest voxel size, so every branch is at least two voxels
across and none is dropped from the truth for its calibre); tubes are rasterized at voxel
centres with rounded ends, so a terminal branch's imaged lumen runs one radius beyond its
axis end and its truth length includes that radius; tree features count the part of each
tree within the hilum margin of the liver (12 mm, the chain's region), not the superior
mesenteric and splenic veins. ``values`` keeps the whole trees' analytic totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from vasomics.errors import InputError
from vasomics.image import Image
from vasomics.phantoms.raster import rasterize_tubes
from vasomics.phantoms.truth import tree_graph
from vasomics.phantoms.vessel_clearance import keep_apart
from vasomics.vessel_graph import VesselGraph

PHASES = ("native", "arterial", "portal_venous", "delayed")

#: Label values of the phantom's label volume.
LABELS = {"air": 0, "fat": 1, "muscle": 2, "abdomen": 3, "bone": 4, "liver": 5, "spleen": 6,
          "kidney": 7, "aorta": 8, "ivc": 9, "portal": 10, "hepatic": 11, "cortical": 12,
          "lung": 13, "artery": 14}

#: Mean Hounsfield units per phase and compartment, and the SD of their variation between
#: scans (bolus timing, dose, cardiac output). Values follow typical multiphase liver CT
#: protocols (late arterial ≈ 35 s, portal venous ≈ 70 s, delayed ≈ 180 s after injection).
ENHANCEMENT_HU = {
    "native": {"aorta": (40, 5), "portal": (40, 5), "hepatic": (40, 5), "ivc": (40, 5),
               "liver": (56, 6), "spleen": (45, 5), "kidney": (32, 5)},
    "arterial": {"aorta": (320, 60), "portal": (135, 35), "hepatic": (55, 10), "ivc": (70, 15),
                 "liver": (70, 8), "spleen": (115, 20), "kidney": (165, 30)},
    "portal_venous": {"aorta": (165, 20), "portal": (185, 25), "hepatic": (165, 25),
                      "ivc": (150, 20), "liver": (110, 12), "spleen": (120, 12),
                      "kidney": (180, 25)},
    "delayed": {"aorta": (115, 12), "portal": (115, 12), "hepatic": (112, 12), "ivc": (112, 12),
                "liver": (90, 8), "spleen": (95, 8), "kidney": (140, 25)},
}
#: Non-enhancing tissue (HU).
TISSUE_HU = {"air": -1000.0, "fat": -100.0, "muscle": 50.0, "abdomen": -30.0, "bone": 250.0,
             "cortical": 800.0, "lung": -850.0}

#: Portal segment names in construction order (Couinaud territory per segmental branch).
PORTAL_NAMES = ("superior_mesenteric_vein", "splenic_vein", "main_portal_vein",
                "right_portal_vein", "left_portal_vein", "right_anterior_portal_vein",
                "right_posterior_portal_vein", "portal_S2", "portal_S3", "portal_S4",
                "portal_S5", "portal_S6", "portal_S7", "portal_S8")
HEPATIC_NAMES = ("right_hepatic_vein", "middle_hepatic_vein", "left_hepatic_vein")
# least gap (mm) between portal and hepatic venous lumens: the portal vein's wall and
# Glissonian sheath and the hepatic vein's wall (:func:`...vessel_clearance.keep_apart`;
# at 0.5 mm the chain traced veins lying against each other as one)
VENOUS_CLEARANCE_MM = 1.0


@dataclass(frozen=True)
class LiverCTTruth:
    """What the phantom generator knows.

    ``labels``: the label volume (``uint8``, values :data:`LABELS`) on the image grid;
    ``portal``/``hepatic``: truth graphs (LPS mm) with ``segment_label`` names;
    ``hu``: the Hounsfield units used per compartment; ``phase``; ``noise_sd_hu``;
    ``values``: analytic totals (tree lengths in mm, volumes in mm³ from the label volume);
    ``artery``: the hepatic artery's truth graph when the phantom has one
    (:mod:`vasomics.phantoms.hepatic_artery`), else ``None``.
    """

    labels: Image
    portal: VesselGraph
    hepatic: VesselGraph
    hu: dict[str, float]
    phase: str
    noise_sd_hu: float
    values: dict[str, float] = field(default_factory=dict)
    artery: VesselGraph | None = None

    def mask(self, name: str) -> np.ndarray:
        """Boolean mask of one compartment (``"liver"`` includes its vessels)."""
        lab = self.labels.array
        if name == "liver":
            return (lab == LABELS["liver"]) | (self.intrahepatic_vessels())
        return lab == LABELS[name]

    def intrahepatic_vessels(self) -> np.ndarray:
        """Vessel voxels inside the liver envelope (portal, hepatic or hepatic artery)."""
        env = self.labels.metadata["liver_envelope"]
        lab = self.labels.array
        return env & np.isin(lab, [LABELS["portal"], LABELS["hepatic"], LABELS["artery"]])


def sample_enhancement(phase: str, rng: np.random.Generator) -> dict[str, float]:
    """Draw one scan's Hounsfield units per enhancing compartment for ``phase``.

    A shared timing/dose factor ``u ~ N(0, 1)`` scales every enhancement above the native
    value by ``1 + 0.6 u × SD/mean-enhancement`` (so organs move together, as with an early or
    late scan), plus independent jitter of half the tabulated SD.
    """
    if phase not in PHASES:
        raise InputError(f"unknown phase {phase!r}; expected one of {', '.join(PHASES)}")
    table, native = ENHANCEMENT_HU[phase], ENHANCEMENT_HU["native"]
    u = rng.normal()
    out = {}
    for organ, (mean, sd) in table.items():
        if phase == "native":
            out[organ] = float(mean + rng.normal(0, sd))
        else:  # enhancement never drops below the native value
            value = mean + 0.85 * u * sd + rng.normal(0, 0.5 * sd)
            out[organ] = float(max(value, native[organ][0]))
    return out


# --------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class _Anatomy:
    liver_r: tuple  # (centre, semi-axes) of the right lobe
    liver_l: tuple
    spleen: tuple
    kidneys: tuple
    aorta_xy: np.ndarray
    aorta_r: float
    ivc_xy: np.ndarray
    ivc_r: float
    body_ab: tuple
    body_cy: float


def _anatomy(rng: np.random.Generator) -> _Anatomy:
    j = lambda s: rng.uniform(-s, s)  # noqa: E731 - small local jitter helper
    k = lambda: 1 + rng.uniform(-0.06, 0.06)  # noqa: E731
    liver_r = (np.array([-62 + j(4), 2 + j(4), 0.0]), np.array([72 * k(), 68 * k(), 78 * k()]))
    liver_l = (np.array([12 + j(4), -36 + j(3), 18 + j(4)]),
               np.array([52 * k(), 34 * k(), 44 * k()]))
    # spleen posterolateral against the abdominal wall, its centre level with the vertebral
    # body as in the bundled real CT (there ~115 mm left of and ~9 mm behind the spine)
    spleen = (np.array([106 + j(4), 56 + j(4), 5 + j(5)]), np.array([30 * k(), 44 * k(), 55 * k()]))
    # upper renal poles near the level of the liver's widest section (right ~10 mm lower),
    # as in the bundled real CT (TotalSegmentator example: kidney tops where the liver
    # section is ~90 % of its largest, the spleen reaching ~60 mm below them)
    kidneys = ((np.array([-72.0, 62.0, -52.0]), np.array([28.0, 24.0, 50.0])),
               (np.array([72.0, 62.0, -42.0]), np.array([28.0, 24.0, 50.0])))
    return _Anatomy(liver_r, liver_l, spleen, kidneys,
                    aorta_xy=np.array([16 + j(3), 28 + j(3)]), aorta_r=11 + j(1.5),
                    ivc_xy=np.array([-22 + j(3), 22 + j(3)]), ivc_r=10 + j(1.5),
                    body_ab=(165 * k(), 130 * k()), body_cy=25 + j(3))


def _in_ellipsoid(p: np.ndarray, centre, axes, shrink_mm: float = 0.0) -> np.ndarray:
    a = np.maximum(np.asarray(axes) - shrink_mm, 1.0)
    return np.sum(((p - centre) / a) ** 2, axis=-1) <= 1.0


def _retrocaval(anat: _Anatomy, p: np.ndarray, margin_mm: float = 0.0) -> np.ndarray:
    """Points behind the IVC's centre and medial to its right wall: crus and spine, never
    liver (the IVC runs in a groove on the liver's posterior surface, not through it)."""
    return ((p[..., 1] > anat.ivc_xy[1] - margin_mm)
            & (p[..., 0] > anat.ivc_xy[0] - anat.ivc_r - margin_mm))


def _in_liver(anat: _Anatomy, p: np.ndarray, shrink_mm: float = 0.0) -> np.ndarray:
    p = np.atleast_2d(p)
    return ((_in_ellipsoid(p, *anat.liver_r, shrink_mm)
             | _in_ellipsoid(p, *anat.liver_l, shrink_mm)) & ~_retrocaval(anat, p, shrink_mm))


def _curve(a, b, rng, step, bend=0.12) -> np.ndarray:
    """Quadratic Bézier from ``a`` to ``b`` bowed sideways by up to ``bend`` × length."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    length = float(np.linalg.norm(d))
    side = rng.normal(size=3)
    side -= d * np.dot(side, d) / max(length**2, 1e-12)
    side /= max(np.linalg.norm(side), 1e-12)
    ctrl = (a + b) / 2 + side * bend * length * rng.uniform(-1, 1)
    n = max(3, int(np.ceil(length / step)) + 1)
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t**2 * b


class _TreeBuilder:
    def __init__(self, rng, step, anat):
        self.rng, self.step, self.anat = rng, step, anat
        self.polylines, self.radii, self.parents, self.names = [], [], [], []

    def add(self, a, b, r0, r1, parent, name, bend=0.08) -> int:
        poly = _curve(a, b, self.rng, self.step, bend)
        self.polylines.append(poly)
        self.radii.append(np.linspace(r0, r1, len(poly)))
        self.parents.append(parent)
        self.names.append(name)
        return len(self.polylines) - 1

    def subtree(self, start, direction, radius, length, depth, parent, name, min_radius):
        """Grow a Murray-law subtree inside the liver (shrunk by the radius)."""
        if depth == 0 or radius < min_radius:
            return
        rng = self.rng
        normal = np.cross(direction, rng.normal(size=3))
        normal /= max(np.linalg.norm(normal), 1e-9)
        share = rng.uniform(0.35, 0.65)
        r1 = radius * (share) ** (1 / 3)
        r2 = radius * (1 - share) ** (1 / 3)
        for r_child, sign in ((r1, 1.0), (r2, -1.0)):
            angle = np.deg2rad(rng.uniform(25, 45))
            d = direction * np.cos(angle) + sign * normal * np.sin(angle)
            d /= np.linalg.norm(d)
            seg_len = length * rng.uniform(0.75, 1.0)
            end = start + d * seg_len
            while seg_len > 6 and not _in_liver(self.anat, end, r_child + 3)[0]:
                seg_len *= 0.7
                end = start + d * seg_len
            if seg_len <= 6 or r_child < min_radius:
                continue
            idx = self.add(start, end, r_child, r_child, parent, name, bend=0.05)
            self.subtree(end, d, r_child, length * 0.75, depth - 1, idx, name, min_radius)


def _unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _portal_tree(anat: _Anatomy, rng, step, depth, min_radius, side_rng):
    t = _TreeBuilder(rng, step, anat)
    j = lambda s: rng.uniform(-s, s, 3)  # noqa: E731
    conf = np.array([2.0, 8.0, -78.0]) + j(3)
    hilum = np.array([-30.0, -4.0, -28.0]) + j(3)
    smv = t.add(conf + np.array([4.0, -6.0, -70.0]), conf, 5.5, 5.5, -1, PORTAL_NAMES[0])
    spleen_c = anat.spleen[0]
    t.add(conf, spleen_c + np.array([-30.0, -12.0, -40.0]), 4.5, 4.5, smv, PORTAL_NAMES[1])
    main = t.add(conf, hilum, 7.0, 7.0, smv, PORTAL_NAMES[2], bend=0.05)
    rpv_end = hilum + np.array([-28.0, 4.0, 6.0]) + j(3)
    lpv_end = hilum + np.array([26.0, -20.0, 14.0]) + j(3)
    rpv = t.add(hilum, rpv_end, 5.9, 5.9, main, PORTAL_NAMES[3], bend=0.04)
    lpv = t.add(hilum, lpv_end, 5.1, 5.1, main, PORTAL_NAMES[4], bend=0.04)
    ra_end = rpv_end + np.array([-10.0, -24.0, 8.0]) + j(3)
    rp_end = rpv_end + np.array([-22.0, 20.0, -2.0]) + j(3)
    ra = t.add(rpv_end, ra_end, 4.8, 4.8, rpv, PORTAL_NAMES[5], bend=0.04)
    rp = t.add(rpv_end, rp_end, 4.6, 4.6, rpv, PORTAL_NAMES[6], bend=0.04)
    segmental = {  # name: (parent index, start, direction, radius, length)
        "portal_S2": (lpv, lpv_end, _unit([0.6, 0.35, 0.6]), 3.4, 38.0),
        "portal_S3": (lpv, lpv_end, _unit([0.6, -0.6, -0.25]), 3.5, 36.0),
        "portal_S4": (lpv, lpv_end, _unit([-0.45, -0.7, 0.3]), 3.6, 34.0),
        "portal_S5": (ra, ra_end, _unit([-0.15, -0.55, -0.8]), 3.8, 38.0),
        "portal_S8": (ra, ra_end, _unit([0.0, -0.1, 1.0]), 3.8, 42.0),
        "portal_S6": (rp, rp_end, _unit([-0.35, 0.3, -0.85]), 3.6, 38.0),
        "portal_S7": (rp, rp_end, _unit([-0.3, 0.3, 0.9]), 3.6, 42.0),
    }
    return _grow_segmental(t, segmental, depth, min_radius, side_rng)


def _fit_in_liver(anat: _Anatomy, start, direction, length, margin_mm):
    """Length (mm) and end of a branch from ``start`` along ``direction``: ``length``,
    shortened in steps of 0.8 while the end lies outside the liver shrunk by ``margin_mm``
    and the branch is longer than 8 mm."""
    seg_len = length
    end = start + direction * seg_len
    while seg_len > 8 and not _in_liver(anat, end, margin_mm)[0]:
        seg_len *= 0.8
        end = start + direction * seg_len
    return seg_len, end


def _turn_into_lobe(anat: _Anatomy, start, direction, length, margin_mm):
    """Direction, length and end of a branch turned from ``direction`` toward the centre of
    the nearer liver lobe by the least turn (in tenths of the whole) that keeps at least
    half of ``length`` inside the liver shrunk by ``margin_mm``."""
    centre = min((anat.liver_l[0], anat.liver_r[0]), key=lambda c: np.linalg.norm(c - start))
    inward = _unit(centre - start)
    for f in np.linspace(0.1, 1.0, 10):
        turned = _unit((1 - f) * direction + f * inward)
        seg_len, end = _fit_in_liver(anat, start, turned, length, margin_mm)
        if seg_len >= length / 2:
            break
    return turned, seg_len, end


def _grow_segmental(t: _TreeBuilder, segmental: dict, depth, min_radius, side_rng):
    """Grow each segmental branch and its subtree. A branch that stays inside the liver
    only when shortened below half its drawn length would end as a stub (down to 7-8 mm,
    as wide as it is long, without a subtree: no liver has one, and the chain rightly
    prunes it as a spur): it is turned into its lobe instead (:func:`_turn_into_lobe`) and
    drawn with its subtree from ``side_rng``, while the main stream still draws what the
    shortened branch drew, so every other branch, the HU and the noise of a seed stay as
    they were (as for the hepatic artery)."""
    for name, (parent, start, direction, radius, length) in segmental.items():
        direction = _unit(direction + t.rng.normal(0, 0.08, 3))
        seg_len, end = _fit_in_liver(t.anat, start, direction, length, radius + 4)
        if seg_len < length / 2:
            shortened = _TreeBuilder(t.rng, t.step, t.anat)  # its draws, its branch dropped
            shortened.add(start, end, radius, radius, -1, name)
            shortened.subtree(end, direction, radius, seg_len * 0.7, depth, 0, name,
                              min_radius)
            direction, seg_len, end = _turn_into_lobe(t.anat, start, direction, length,
                                                      radius + 4)
            main_rng, t.rng = t.rng, side_rng
        else:
            main_rng = t.rng
        idx = t.add(start, end, radius, radius, parent, name)
        t.subtree(end, direction, radius, seg_len * 0.7, depth, idx, name, min_radius)
        t.rng = main_rng
    return t


def _hepatic_tree(anat: _Anatomy, rng, step, depth, min_radius):
    t = _TreeBuilder(rng, step, anat)
    ivc = anat.ivc_xy
    top = 62.0 + rng.uniform(-3, 3)
    lhv = np.array([ivc[0] + anat.ivc_r - 2, ivc[1] - 4, top + 2])  # its exit on the IVC
    roots = {  # name: (exit point on the IVC wall, direction, radius, length)
        "right_hepatic_vein": (np.array([ivc[0] - anat.ivc_r, ivc[1], top - 4]),
                               _unit([-0.8, -0.05, -0.6]), 5.5, 55.0),
        "middle_hepatic_vein": (np.array([ivc[0] - 3, ivc[1] - anat.ivc_r, top]),
                                _unit([-0.3, -0.7, -0.65]), 5.0, 52.0),
        # toward the left lobe's centre, 70 % of the way: a fixed direction left the exit
        # point above the lobe's dome, so the vein never entered it (a 6 mm stub)
        "left_hepatic_vein": (lhv, _unit(anat.liver_l[0] - lhv), 4.6,
                              0.7 * float(np.linalg.norm(anat.liver_l[0] - lhv))),
    }
    for name, (start, direction, radius, length) in roots.items():
        direction = _unit(direction + rng.normal(0, 0.06, 3))
        seg_len, end = _fit_in_liver(anat, start, direction, length, radius + 4)
        idx = t.add(start, end, radius, radius, -1, name)
        t.subtree(end, direction, radius, seg_len * 0.6, depth, idx, name, min_radius)
    return t


# --------------------------------------------------------------------------- rendering
def _grid_points(shape, spacing, origin, box=None):
    """Physical (x, y, z) of the voxel centres inside ``box`` (slices), shape (..., 3)."""
    box = box or tuple(slice(0, n) for n in shape)
    zz, yy, xx = (np.arange(b.start, b.stop, dtype=np.float32) * s + o for b, s, o in
                  zip(box, spacing, origin[::-1], strict=True))
    return np.stack(np.broadcast_arrays(xx[None, None, :], yy[None, :, None], zz[:, None, None]),
                    axis=-1)


def _box(shape, spacing, origin, centre, half):
    idx_c = (np.asarray(centre)[::-1] - np.asarray(origin)[::-1]) / np.asarray(spacing)
    half_i = np.asarray(half)[::-1] / np.asarray(spacing)
    lo = np.clip(np.floor(idx_c - half_i).astype(int), 0, np.asarray(shape))
    hi = np.clip(np.ceil(idx_c + half_i).astype(int) + 1, 0, np.asarray(shape))
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _paint_ellipsoid(labels, spacing, origin, centre, axes, value, only=None, exclude=None):
    box = _box(labels.shape, spacing, origin, centre, axes)
    if any(b.stop <= b.start for b in box):
        return
    p = _grid_points(labels.shape, spacing, origin, box)
    inside = np.sum(((p - centre.astype(np.float32)) / axes.astype(np.float32)) ** 2, -1) <= 1
    if exclude is not None:
        inside &= ~exclude(p)
    sub = labels[box]
    if only is not None:
        inside &= np.isin(sub, only)
    sub[inside] = value


def liver_ct_phantom(shape=(96, 128, 128), spacing=None, *, phase: str = "portal_venous",
                     noise_sd_hu: float = 12.0, seed: int = 0, depth: int = 3,
                     min_radius_mm: float | None = None, fov_mm=(360.0, 360.0),
                     z_extent_mm: float | None = None, psf_sigma_mm: float = 0.6,
                     hu: dict[str, float] | None = None,
                     hepatic_artery: bool = False, noise_seed: int | None = None
                     ) -> tuple[Image, LiverCTTruth]:
    """Generate one abdominal CT phantom and its truth.

    Parameters
    ----------
    shape:
        Grid shape ``(z, y, x)``.
    spacing:
        Voxel size in mm ``(z, y, x)``; default: the in-plane field of view ``fov_mm``
        (``(y, x)`` mm) over the grid and ``z_extent_mm`` (default 300 mm) over the slices.
    phase:
        One of :data:`PHASES`.
    noise_sd_hu:
        Standard deviation (HU) of the added correlated Gaussian noise.
    depth:
        Generations of random subtree below each segmental / hepatic-vein trunk.
    min_radius_mm:
        Smallest branch radius grown (default: the largest voxel size, at least 1 mm).
    psf_sigma_mm:
        Gaussian point-spread function (mm) applied before the noise (partial volume).
    hu:
        Override the sampled Hounsfield units per compartment (keys of
        :data:`ENHANCEMENT_HU`).
    hepatic_artery:
        Add the hepatic artery tree (:mod:`vasomics.phantoms.hepatic_artery`; label
        ``artery``, the aorta's HU unless ``hu`` gives ``artery``). It has its own random
        generator and is painted where no portal vein, IVC or aorta lies and over the hepatic
        veins it crosses (:func:`vasomics.phantoms.hepatic_artery.paint_artery`), so the
        venous trees, the portal mask, the HU draws and the noise equal those of the same
        seed without it, and the hepatic mask does less the crossings' voxels.
    noise_seed:
        Seed of the noise alone: the same anatomy, enhancement and blur as ``seed`` gives,
        with another noise realization (a repeated scan of one patient). Default: the noise
        is drawn after the anatomy from ``seed``'s generator.

    Returns
    -------
    (Image, LiverCTTruth)
        The ``float32`` CT image in HU (``modality="CT"``, no contrast tags) and its truth.
    """
    if phase not in PHASES:
        raise InputError(f"unknown phase {phase!r}; expected one of {', '.join(PHASES)}")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 16:
        raise InputError(f"liver phantom grid must be 3D with at least 16 voxels per axis, "
                         f"got {shape}")
    if spacing is None:
        z_ext = 300.0 if z_extent_mm is None else float(z_extent_mm)
        spacing = (z_ext / shape[0], fov_mm[0] / shape[1], fov_mm[1] / shape[2])
    spacing = tuple(float(s) for s in spacing)
    rng = np.random.default_rng(seed)
    anat = _anatomy(rng)
    extent = (np.asarray(shape) - 1) * np.asarray(spacing)
    origin = (-extent[2] / 2, -extent[1] / 2 + 20.0, -extent[0] / 2 + 10.0)  # (x, y, z) mm
    min_r = max(1.0, max(spacing)) if min_radius_mm is None else float(min_radius_mm)
    step = min(spacing) / 2
    portal = _portal_tree(anat, rng, step, depth, min_r, np.random.default_rng([int(seed), 2]))
    hepatic = _hepatic_tree(anat, rng, step, depth, min_r)
    portal.polylines = keep_apart(portal.polylines, portal.radii, hepatic.polylines,
                                  hepatic.radii, VENOUS_CLEARANCE_MM)
    labels = _label_volume(shape, spacing, origin, anat, portal, hepatic)
    artery = None
    if hepatic_artery:
        from vasomics.phantoms.hepatic_artery import hepatic_artery_tree, paint_artery

        artery = hepatic_artery_tree(portal, anat.aorta_xy, anat.aorta_r,
                                     np.random.default_rng([int(seed), 1]), step)
        paint_artery(labels, artery, spacing, origin, LABELS)
    env = np.zeros(shape, bool)
    for part in (anat.liver_r, anat.liver_l):
        _paint_ellipsoid(env.view(np.uint8), spacing, origin, *part, 1,
                         exclude=lambda q: _retrocaval(anat, q))
    values = dict(hu or sample_enhancement(phase, rng))
    if artery is not None:
        values.setdefault("artery", values["aorta"])  # aortic blood
    noise_rng = rng if noise_seed is None else np.random.default_rng([int(seed), 3,
                                                                     int(noise_seed)])
    image = render_labels(labels, spacing, _phantom_lut(values), noise_sd_hu, psf_sigma_mm,
                          noise_rng)
    geometry = {"spacing": spacing, "origin": origin}
    label_img = Image(labels, modality="mask", metadata={"liver_envelope": env}, **geometry)
    pg = tree_graph(portal.polylines, portal.radii, portal.parents,
                    metadata={"phantom": "liver_ct_portal"}).replace(
        segment_label=np.array(portal.names, object))
    hg = tree_graph(hepatic.polylines, hepatic.radii, hepatic.parents,
                    metadata={"phantom": "liver_ct_hepatic"}).replace(
        segment_label=np.array(hepatic.names, object))
    vox = float(np.prod(spacing))
    truth_values = {
        "portal_length_mm": float(pg.segment_lengths().sum()),
        "hepatic_length_mm": float(hg.segment_lengths().sum()),
        # the liver with its intrahepatic vessels (truth.mask("liver")); the IVC runs in a
        # groove behind the liver and is not liver
        "liver_volume_mm3": float((np.count_nonzero(labels == LABELS["liver"])
                                   + np.count_nonzero(env & np.isin(labels, [
                                       LABELS["portal"], LABELS["hepatic"], LABELS["artery"]]))
                                   ) * vox),
        "spleen_volume_mm3": float(np.count_nonzero(labels == LABELS["spleen"]) * vox),
        "portal_volume_mm3": float(np.count_nonzero(labels == LABELS["portal"]) * vox),
        "hepatic_volume_mm3": float(np.count_nonzero(labels == LABELS["hepatic"]) * vox),
    }
    ag = None
    if artery is not None:
        ag = tree_graph(artery.polylines, artery.radii, artery.parents,
                        metadata={"phantom": "liver_ct_hepatic_artery"}).replace(
            segment_label=np.array(artery.names, object))
        truth_values["artery_length_mm"] = float(ag.segment_lengths().sum())
        truth_values["artery_volume_mm3"] = float(np.count_nonzero(labels == LABELS["artery"])
                                                  * vox)
    meta = {"phantom": "liver_ct", "seed": seed}
    if noise_seed is not None:
        meta["noise_seed"] = noise_seed
    ct = Image(image, modality="CT", metadata=meta,
               **geometry)
    return ct, LiverCTTruth(labels=label_img, portal=pg, hepatic=hg, hu=values, phase=phase,
                            noise_sd_hu=float(noise_sd_hu), values=truth_values, artery=ag)


def _label_volume(shape, spacing, origin, anat, portal, hepatic) -> np.ndarray:
    lab = np.zeros(shape, np.uint8)
    a, b = anat.body_ab
    p2 = _grid_points((1, *shape[1:]), spacing, origin)[0, ..., :2]  # one axial slice
    by = p2[..., 1] - anat.body_cy  # the body's centre lies posterior to the organs' frame
    r = (p2[..., 0] / a) ** 2 + (by / b) ** 2
    slice_lab = np.zeros(shape[1:], np.uint8)
    slice_lab[r <= 1] = LABELS["fat"]
    inner = (p2[..., 0] / (a - 15)) ** 2 + (by / (b - 15)) ** 2
    slice_lab[inner <= 1] = LABELS["muscle"]
    core = (p2[..., 0] / (a - 25)) ** 2 + (by / (b - 25)) ** 2
    slice_lab[core <= 1] = LABELS["abdomen"]
    for cx in (-38.0, 38.0):  # paraspinal muscles
        slice_lab[((p2[..., 0] - cx) / 26) ** 2 + ((p2[..., 1] - 78) / 20) ** 2 <= 1] = \
            LABELS["muscle"]
    vert = np.hypot(p2[..., 0], p2[..., 1] - 58)
    slice_lab[vert <= 19] = LABELS["cortical"]
    slice_lab[vert <= 16] = LABELS["bone"]
    slice_lab[np.hypot(p2[..., 0] - anat.aorta_xy[0], p2[..., 1] - anat.aorta_xy[1])
              <= anat.aorta_r] = LABELS["aorta"]
    lab[:] = slice_lab
    zs = origin[2] + np.arange(shape[0]) * spacing[0]
    _paint_ribs_and_lungs(lab, p2, zs, spacing, origin, anat, core)
    soft = [LABELS["abdomen"], LABELS["muscle"]]
    for centre, axes in anat.kidneys:
        _paint_ellipsoid(lab, spacing, origin, centre, axes, LABELS["kidney"], only=soft)
    _paint_ellipsoid(lab, spacing, origin, *anat.spleen, LABELS["spleen"], only=soft)
    for part in (anat.liver_r, anat.liver_l):
        _paint_ellipsoid(lab, spacing, origin, *part, LABELS["liver"],
                         only=soft + [LABELS["fat"], LABELS["kidney"]],
                         exclude=lambda q: _retrocaval(anat, q))
    # IVC: from below up to the top of the liver (then towards the heart).
    ivc_top = anat.liver_r[0][2] + anat.liver_r[1][2] + 10
    ivc_disk = np.hypot(p2[..., 0] - anat.ivc_xy[0], p2[..., 1] - anat.ivc_xy[1]) <= anat.ivc_r
    for k in np.nonzero(zs <= ivc_top)[0]:
        lab[k][ivc_disk] = LABELS["ivc"]
    for tree, value in ((portal, LABELS["portal"]), (hepatic, LABELS["hepatic"])):
        mask = rasterize_tubes(tree.polylines, tree.radii, shape, spacing, origin=origin,
                               flat_caps=False)
        lab[mask & (lab != LABELS["ivc"]) & (lab != LABELS["aorta"])] = value
    return lab


def _paint_ribs_and_lungs(lab, p2, zs, spacing, origin, anat, core) -> None:
    """Ribs: bone arcs in the muscle wall (12 per turn, rotating 9 degrees per cm of height;
    none in front of the sternum or at the spine) from the upper renal poles up. Lung bases:
    air inside the wall above the diaphragm, whose height falls from 20 mm below the liver's
    top anteriorly to 70 mm below it posteriorly, and never within 8 mm of liver or spleen
    (the diaphragm drapes over their domes); the mediastinum in front of the spine stays
    soft tissue."""
    x, y = p2[..., 0], p2[..., 1]
    theta = np.arctan2(y - anat.body_cy, x)
    wall = (core > 1) & (lab[0] == LABELS["muscle"])
    front = np.abs(np.angle(np.exp(1j * (theta + np.pi / 2)))) < np.deg2rad(25)
    back = np.abs(np.angle(np.exp(1j * (theta - np.pi / 2)))) < np.deg2rad(20)
    rib_low = max(c[2] + a[2] for c, a in anat.kidneys) - 30
    top = anat.liver_r[0][2] + anat.liver_r[1][2]
    floor = (top - 20 - 50 * np.clip((y - anat.body_cy + 40) / 110, 0, 1)
             - 15 * np.clip((np.abs(x) - 60) / 80, 0, 1))
    inner = core <= 1
    medi = (x / 50) ** 2 + ((y - 10) / 60) ** 2 <= 1  # heart and great vessels
    organs = ((anat.liver_r, 8.0), (anat.liver_l, 8.0), (anat.spleen, 8.0))
    for k, z in enumerate(zs):
        if z >= rib_low:
            rib = wall & ~front & ~back & (np.cos(12 * theta + np.deg2rad(9) * z / 10) > 0.55)
            lab[k][rib] = LABELS["bone"]
        lung = inner & ~medi & (z > floor) & (lab[k] == LABELS["abdomen"])
        if not lung.any():
            continue
        p = np.concatenate([p2, np.full(p2.shape[:-1] + (1,), z, p2.dtype)], axis=-1)
        for (centre, axes), margin in organs:
            lung &= ~_in_ellipsoid(p, centre, np.asarray(axes) + margin)
        lab[k][lung] = LABELS["lung"]


def _phantom_lut(hu: dict[str, float]) -> np.ndarray:
    lut = np.zeros(max(LABELS.values()) + 1, np.float32)
    for name, value in LABELS.items():
        lut[value] = hu.get(name, TISSUE_HU.get(name, 0.0))
    return lut


#: 3D-IRCADb label values (as read from the label map of patient 1.1) → compartment names
#: of :data:`ENHANCEMENT_HU` / :data:`TISSUE_HU`. Unlisted labels render as ``abdomen``.
IRCADB_COMPARTMENTS = {0: "air", 1: "abdomen", 17: "portal", 465: "portal", 33: "ivc",
                       481: "hepatic", 513: "aorta", 449: "liver", 451: "liver", 385: "spleen",
                       129: "kidney", 193: "kidney", 257: "air", 321: "air", 65: "cortical"}
#: 3D-IRCADb labels of the liver with its intrahepatic vessels (parenchyma, tumour, portal
#: and hepatic veins).
IRCADB_LIVER = (449, 451, 465, 481)


def ircadb_organs(labels: np.ndarray) -> dict[str, np.ndarray]:
    """The manual organ masks of a 3D-IRCADb label map under the CT chain's organ names
    (:data:`vasomics.chain.localize.ORGANS`): liver with its vessels, spleen, aorta (label
    513: every artery), IVC (33: the whole venous return), extrahepatic portal vein,
    kidneys."""
    a = np.asarray(labels)
    return {"liver": np.isin(a, IRCADB_LIVER), "spleen": a == 385, "aorta": a == 513,
            "ivc": a == 33, "portal_vein": a == 17, "kidney": np.isin(a, (129, 193))}


def ct_from_labels(labels: Image, compartments: dict[int, str], phase: str = "portal_venous",
                   *, noise_sd_hu: float = 12.0, psf_sigma_mm: float = 1.0, seed: int = 0,
                   hu: dict[str, float] | None = None) -> Image:
    """Synthesize a CT-like image (HU, ``float32``) from a label map.

    Each label value is mapped to a compartment name (``compartments``, e.g.
    :data:`IRCADB_COMPARTMENTS`); enhancing compartments take the Hounsfield units drawn by
    :func:`sample_enhancement` for ``phase`` (or ``hu``), the others :data:`TISSUE_HU`. The
    result is blurred by a Gaussian PSF of ``psf_sigma_mm`` (partial volume) and gets
    correlated Gaussian noise of SD ``noise_sd_hu``. Lung labels may be mapped to ``"air"``.
    The image stays in memory: save it only where the label map's licence allows.
    """
    rng = np.random.default_rng(seed)
    values = dict(hu or sample_enhancement(phase, rng))
    array = np.asarray(labels.array)
    present = np.unique(array)
    lut_index = np.searchsorted(present, array).astype(np.int32)
    lut = np.array([values.get(compartments.get(int(v), "abdomen"),
                               TISSUE_HU.get(compartments.get(int(v), "abdomen"), 0.0))
                    for v in present], np.float32)
    image = render_labels(lut_index, labels.spacing, lut, noise_sd_hu, psf_sigma_mm, rng)
    return Image(image, spacing=labels.spacing, origin=labels.origin,
                 direction=labels.direction, modality="CT",
                 metadata={"synthetic_phase": phase, "noise_sd_hu": float(noise_sd_hu)})


def render_labels(labels, spacing, lut, noise_sd, psf_sigma_mm, rng) -> np.ndarray:
    """HU image ``lut[labels]`` blurred by a Gaussian PSF (``psf_sigma_mm``) plus correlated
    Gaussian noise scaled to SD ``noise_sd`` (HU)."""
    image = np.asarray(lut, np.float32)[labels]
    sigma = [psf_sigma_mm / s for s in spacing]
    ndimage.gaussian_filter(image, sigma, output=image, truncate=3.0)
    if noise_sd > 0:
        noise = rng.standard_normal(labels.shape, dtype=np.float32)
        ndimage.gaussian_filter(noise, 0.6, output=noise, truncate=2.5)
        noise *= np.float32(noise_sd / max(float(noise[::4, ::4, ::4].std()), 1e-6))
        image += noise
    return image


# --------------------------------------------------------------------------- scoring
def truth_organs(truth: LiverCTTruth) -> dict[str, np.ndarray]:
    """Truth masks under the chain's organ names (``portal_vein``: extrahepatic portal
    and splenic vein)."""
    lab = truth.labels.array
    env = truth.labels.metadata["liver_envelope"]
    return {"liver": truth.mask("liver"), "spleen": lab == LABELS["spleen"],
            "aorta": lab == LABELS["aorta"], "ivc": lab == LABELS["ivc"],
            "portal_vein": (lab == LABELS["portal"]) & ~env, "kidney": lab == LABELS["kidney"]}


def naming_accuracy(named: VesselGraph | None, truth: VesselGraph, tol_mm: float,
                    step_mm: float = 0.5) -> tuple[float, float]:
    """Per-segment naming accuracy of an extracted, named graph against a truth graph:
    ``(accuracy, matched)`` of :func:`vasomics.phantoms.truth.naming_scores` (per point,
    length-weighted, against the nearest truth centerline point within ``tol_mm``; NaN, 0
    when nothing matched or ``named`` is ``None``)."""
    from vasomics.phantoms.truth import naming_scores

    score = naming_scores(named, truth, tol_mm, step_mm)
    return score["accuracy"], score["matched"]


def truth_features(truth: LiverCTTruth, hilum_margin_mm: float = 12.0
                   ) -> dict[tuple[str, str], float]:
    """Generator truth of the chain's liver and tree features, keyed ``(feature_id, scope)``,
    at the scope and scale the scan shows: :func:`vasomics.phantoms.truth.liver_tree_truth`
    (the trees within ``hilum_margin_mm`` of the liver, rounded ends included)."""
    from vasomics.phantoms.truth import liver_tree_truth

    return liver_tree_truth(truth, hilum_margin_mm)
