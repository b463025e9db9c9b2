"""Tissue localization: liver, spleen, aorta, inferior vena cava and portal/splenic vein, plus
the portal/splenic confluence, by registration of a bundled real atlas and intensity
refinement.

The atlas (``chain/atlas/abdomen_ct_atlas.npz``, see ``chain/atlas/NOTICE.txt``) is the
TotalSegmentator example CT of the upper abdomen (3 mm voxels, a 90 mm slab at the level of the
liver and spleen, Apache-2.0) with its model masks merged into one label map.

Steps (all geometry in physical LPS mm; the target keeps its own grid):

1. The target is reduced to about ``registration_spacing_mm`` by block averaging.
2. Initialization: body centroids in x/y, an isotropic scale from the body widths, and a search
   over the cranio-caudal offset (``z_search_step_mm``) scored by Mattes mutual information;
   the best ``n_starts`` offsets are refined.
3. Affine registration (Mattes MI, multi-resolution gradient descent) of atlas (fixed) to target
   (moving); optionally a B-spline stage. The best-scoring start wins (metric plus
   ``anisotropy_weight`` times the transform's anisotropy), unless its atlas liver
   lands on a target median below ``liver_min_hu`` (fat, bowel) and another start's does
   not at a metric within ``liver_gate_tolerance`` of it (:func:`_liver_plausible`).
4. The atlas labels are resampled onto the target grid through the inverse transform. The
   spleen, aorta and IVC masks are then moved in-plane (``snap_organs``, at most
   ``snap_mm``) to where they stand out brightest and most homogeneous from their
   surroundings (:func:`snap_organ`): an affine atlas lands a 2 cm tube several mm off. The
   spleen is also searched cranio-caudally (``snap_z_mm``): the atlas slab cuts it, and the
   registered mask can sit 30-45 mm below the target's spleen.
5. Intensity refinement per organ, inside a band of ``band_mm`` around the warped mask: a
   spatial prior (logistic in the signed distance to the warped mask, scale
   ``prior_scale_mm``) times a Gaussian intensity likelihood of the organ (median and MAD of the
   warped mask's core) against the band's own intensity histogram; posterior > 0.5, holes
   filled slice by slice, the component that holds the core kept. Organs are claimed in the
   order of :data:`CLAIM_ORDER`, without overlap. The liver, spleen and kidneys get up to
   ``refine_passes`` passes, each taking the previous result as its prior (so an organ the
   affine atlas covers only in part is followed), never into another organ's prior core.
   A spleen or kidney pass is kept while it still changes the mask (Dice below
   ``refine_converged_dice``). A liver pass (``follow_organs``) keeps only thick growth
   (:func:`thick_growth`: what survives an opening of ``follow_opening_mm``, so a lobe is
   followed but not a leak along a vessel or muscle) until a pass changes less than
   ``follow_min_growth`` of the volume. That liver is the vessel stage's search region.
   Its measured extent (:attr:`Localization.extent`, ``extent_organs``) is followed on by
   thick growth, up to ``follow_passes``, and kept when following ends there; a liver
   still growing then leaks into tissue of its density, and its extent is the searched
   mask. The measured liver, extent or searched mask, is trimmed of leaks
   (:func:`trim_leak`: thick parts whose HU, averaged over a few mm, lies below the liver
   core's; arterial-phase livers that took paraspinal and abdominal-wall muscle a few HU
   darker); a leaking liver's searched mask is its measured one. The spleen's measured
   mask (``trim_both_sides``) loses tissue reading above as well as below its core (a
   kidney's pole it took where the two read alike); it keeps its searched mask for the
   other stages.
   Growth beyond the atlas's slab stops at area leaps (tubes: ``tube_area_ratio``; liver and
   spleen: ``organ_area_step``).
6. The aorta is rounded slice by slice (:func:`round_tube`); the IVC keeps one section per
   slice (:func:`one_section_per_slice`: its refinement reached the portal trunk beside it
   through their partial-volume gap), and where it reads unlike the liver, in slices whose
   section is oversized (``ivc_area_ratio``), only its voxels on its side of halfway to
   the liver's median (:func:`sections_of_own_hu`: liver tissue it took). A tube
   (``track_tubes``: aorta, IVC) whose intensity lies within ``track_below_sd`` of its SDs
   of the liver's (the IVC in arterial and delayed scans, the aorta in delayed ones) is
   then followed slice by slice through the whole volume
   (:func:`vasomics.chain.tube_tracking.track_tube`): with the liver's density its growth
   stops where the liver touches it and the liver's refinement takes it. The tracker may
   take voxels the liver claimed; they leave the liver (the IVC runs in a groove behind
   the liver, not in it).

A deep-learning backend (TotalSegmentator, #3) can replace steps 1–5 when installed; this
module is the dependency-free default.
"""

from __future__ import annotations

import functools
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources

import edt
import numpy as np
from pydantic import Field
from scipy import ndimage

from vasomics.chain._grid import (
    ball_opening,
    border_distance,
    bounding_box,
    fill_holes,
    largest_component,
    largest_label,
)
from vasomics.chain.tube_tracking import TubeTrackParams, track_tube
from vasomics.errors import InputError
from vasomics.image import Image
from vasomics.parallel import threaded_map
from vasomics.params import StageParams

log = logging.getLogger(__name__)

ORGANS = ("liver", "spleen", "aorta", "ivc", "portal_vein")
#: Localized as well, to keep them out of the liver's vessels (not validated).
HELPER_ORGANS = ("kidney",)
#: Vertical tubes: their growth beyond the atlas stops at the first slice whose area exceeds
#: ``tube_area_ratio`` times their mean area inside the atlas.
TUBES = ("aorta", "ivc")
#: Refinement order: a voxel goes to the first organ that claims it.
CLAIM_ORDER = ("liver", "spleen", "aorta", "ivc", "portal_vein", "kidney_left", "kidney_right")


class LocalizeParams(StageParams):
    """Atlas registration and refinement settings (mm, HU)."""

    working_spacing_mm: float = Field(1.6, description="Organs are refined on a grid reduced "
                                                       "by block averaging to about this voxel "
                                                       "size, then expanded to the image grid.")
    registration_spacing_mm: float = Field(4.0, description="Target voxel size used for "
                                                            "registration (block averaging).")
    z_search_step_mm: float = Field(15.0, description="Step of the cranio-caudal offset "
                                                      "search at initialization.")
    n_starts: int = Field(3, description="Best initial offsets refined by registration.")
    liver_min_hu: float = Field(0.0, description="A refined start whose atlas liver lands on "
                                                 "a median below this (HU: fat, bowel) "
                                                 "gives way to a start whose liver does not "
                                                 "and whose metric is within "
                                                 "liver_gate_tolerance of it: a liver reads "
                                                 "40-130 HU in every phase, down to about 0 "
                                                 "in extreme steatosis.")
    anisotropy_weight: float = Field(0.02, ge=0.0, description="Refined starts compete on "
                                     "the metric plus this times the transform's "
                                     "anisotropy (ln of its largest over its smallest scale): "
                                     "the atlas slab fits a scan nearly as well squeezed "
                                     "cranio-caudally (phantom 615: scale 0.76 against 0.97 "
                                     "in-plane at a metric 0.8 % better than 1.01, liver "
                                     "volume -7 %), and no near tie should go to a body "
                                     "shape that far from the atlas's.")
    liver_gate_tolerance: float = Field(0.1, ge=0.0, description="Largest relative loss of "
                                        "the metric accepted for a start with a plausible "
                                        "liver (phantom 517: 1.2 %; a thoracic CT angiogram "
                                        "without a liver: 42 %, its atlas liver on soft "
                                        "tissue of the chest).")
    sampling_fraction: float = Field(0.12, description="Fraction of atlas voxels sampled by "
                                                       "the metric.")
    iterations: int = Field(120, description="Gradient-descent iterations per resolution "
                                             "level of the affine stage.")
    bspline: bool = Field(False, description="Add a B-spline stage after the affine one "
                                             "(more accurate for small organs such as the "
                                             "aorta, about 5-10x slower).")
    bspline_grid_mm: float = Field(60.0, description="B-spline control point spacing.")
    bspline_iterations: int = Field(50, description="L-BFGS-B iterations of the B-spline "
                                                    "stage.")
    refine: bool = Field(True, description="Refine the warped masks by intensity.")
    refine_passes: dict[str, int] = Field(
        {"liver": 6, "spleen": 2, "kidney_left": 3, "kidney_right": 3}, description=
        "Refinement passes per organ; each pass takes the previous result as its prior, so "
        "an organ that the affine atlas covers only in part is followed up to band_mm "
        "further per pass. The kidneys' upper poles, which the atlas misses and which read "
        "like vessels beside the liver in the portal venous phase, took 3 passes: kidney "
        "Dice 0.80 -> 0.93 on median over 24 held-out phantoms.")
    refine_converged_dice: float = Field(0.93, description="A further pass is kept only "
                                                         "when it changes the mask (Dice "
                                                         "with the previous pass below "
                                                         "this); otherwise refinement "
                                                         "stops with the previous pass.")
    follow_organs: tuple[str, ...] = Field(("liver",), description=
                                           "Organs whose further passes are kept by growth "
                                           "(follow_opening_mm, follow_min_growth) instead of "
                                           "by refine_converged_dice.")
    follow_opening_mm: float = Field(6.0, description="A further pass of a followed organ "
                                                      "keeps the voxels it adds only where "
                                                      "they survive an opening with a ball "
                                                      "of this radius and reach the organ "
                                                      "through such thick parts (a lobe, "
                                                      "not a leak along a vessel or a "
                                                      "muscle border).")
    follow_min_growth: float = Field(0.005, description="Following stops when a pass "
                                                        "changes fewer voxels than this "
                                                        "fraction of the organ's volume.")
    extent_organs: tuple[str, ...] = Field(("liver",), description=
                                           "Organs whose measured extent "
                                           "(Localization.extent: their volume, their mask "
                                           "in the outputs) is the searched mask followed "
                                           "on by thick growth (follow_passes). Not the "
                                           "spleen: on the phantoms its volume came within "
                                           "5 % on 79 of 84 (56 before), but on real scans "
                                           "it grew into the tissue around it (the atlas "
                                           "scan's deformed copy +0.055 -> +0.308 against "
                                           "TotalSegmentator's spleen).")
    follow_passes: int = Field(20, ge=1, description="An extent organ is followed on up to "
                               "this many passes in all. A liver the "
                               "atlas covers in part ends in 11-18 passes; one still "
                               "growing then is leaking into touching tissue of its density "
                               "(an arterial-phase liver into muscle: 1-2 % of its volume "
                               "per pass, without end), and its extent is the mask after "
                               "refine_passes, trimmed of the leak (leak_*). The vessel "
                               "stage searches that mask in every "
                               "case: its rules were set on it, and on 36 held-out phantoms "
                               "its naming fell 0.962 to 0.923 searching the extent.")
    leak_smoothing_mm: float = Field(2.0, gt=0, description="An organ's measured mask (an "
                                     "extent organ's extent, or its searched mask when "
                                     "still growing after follow_passes; the mask of an "
                                     "organ of trim_both_sides) loses the thick parts "
                                     "whose HU, averaged over its own voxels with Gaussian "
                                     "weights of this SD, lies leak_sd_factor robust SDs "
                                     "below its core's (trim_leak).")
    leak_sd_factor: float = Field(2.5, gt=0, description="Robust SDs of the smoothed core HU "
                                  "below its median that mark a leak (trim_leak).")
    leak_body_mm: float = Field(3.0, gt=0, description="A leak is what survives an opening "
                                "of this radius (mm) of the low voxels: a body of tissue, "
                                "not the organ's partial-volume border (trim_leak).")
    trim_both_sides: tuple[str, ...] = Field(("spleen",), description="Organs whose "
                                             "measured mask is always trimmed (trim_leak) "
                                             "of tissue reading above as well as below "
                                             "their core: no vessel runs inside them. The "
                                             "spleen takes the left kidney's upper pole "
                                             "where it reads like it (arterial and delayed "
                                             "phantoms: 12 HU brighter under 12 HU of "
                                             "noise).")
    prior_scale_mm: float = Field(4.0, description="Scale of the logistic spatial prior in "
                                                   "the signed distance to the warped mask.")
    band_mm: float = Field(12.0, description="Refinement is limited to this distance from "
                                             "the warped mask.")
    core_mm: float = Field(4.0, description="Depth inside the warped mask used to estimate "
                                            "the organ's intensity.")
    min_sd_hu: float = Field(12.0, description="Floor of the organ intensity SD (HU).")
    snap_organs: tuple[str, ...] = Field(("spleen", "aorta", "ivc"), description=
                                         "Warped masks moved by the in-plane translation "
                                         "(within snap_mm) that best separates them from "
                                         "their surroundings, before refinement.")
    snap_mm: float = Field(14.0, description="Largest in-plane shift searched by the snap.")
    snap_z_mm: dict[str, float] = Field({"spleen": 45.0}, description=
                                        "Largest cranio-caudal shift searched by the snap, "
                                        "per organ (others: in-plane only). The atlas slab "
                                        "cuts the spleen; registered, it can land 30-45 mm "
                                        "below the target's, where no in-plane shift finds "
                                        "it and the snap took the abdominal wall instead.")
    snap_gain: float = Field(1.3, description="A shift is taken only when its contrast score "
                                              "beats the unshifted mask's by this factor.")
    extend_organs: tuple[str, ...] = Field(("liver", "spleen", "aorta", "ivc"), description=
                                           "Organs grown by intensity beyond the atlas's "
                                           "field of view (the atlas is a 90 mm slab).")
    organ_area_step: float = Field(1.25, description="Liver/spleen growth beyond the atlas "
                                                     "stops at the first slice whose area "
                                                     "exceeds this times the previous slice's "
                                                     "(or the largest section inside the "
                                                     "atlas): a leak into touching tissue.")
    tube_area_ratio: float = Field(1.6, description="Aorta/IVC growth beyond the atlas stops "
                                                    "where a slice's area exceeds this times "
                                                    "their mean area inside the atlas.")
    extend_margin_mm: float = Field(60.0, description="In-plane margin around the organ "
                                                      "searched when growing beyond the atlas.")
    extend_opening_mm: dict[str, float] = Field(
        {"liver": 5.0, "spleen": 4.0, "aorta": 4.0, "ivc": 4.0}, description=
        "Opening radius per organ that cuts thin bridges before growing beyond the atlas "
        "(4 mm for an organ not listed). The liver's 5 mm cuts most of the abdominal "
        "wall's muscle ring, which arterial livers match in density, below the "
        "liver's tip.")
    ivc_opening_mm: float = Field(3.0, description="The IVC keeps one section per axial "
                                                   "slice: the largest component of the "
                                                   "slice's opening by a disk of this radius "
                                                   "(mm; :func:`one_section_per_slice`).")
    ivc_area_ratio: float = Field(1.25, description="An IVC unlike the liver (by "
                                  "``track_below_sd`` of its SDs or more) keeps, in an axial "
                                  "slice whose section exceeds this times the median "
                                  "section's area, only its voxels on its side of halfway "
                                  "to the liver's median (:func:`sections_of_own_hu`).")
    track_tubes: tuple[str, ...] = Field(("aorta", "ivc"), description=
                                         "Tubes followed slice by slice after refinement "
                                         "(:mod:`vasomics.chain.tube_tracking`), through "
                                         "the liver where it took them.")
    track_below_sd: float = Field(1.5, description="A tube is tracked only when its "
                                                   "intensity lies within this many of its "
                                                   "SDs of the liver's (otherwise refinement "
                                                   "separates them: portal venous phase).")
    tube_track: TubeTrackParams = Field(default_factory=TubeTrackParams,
                                        description="Settings of the tube tracking.")
    seed: int = Field(7, description="Seed of the metric's random sampling.")


@dataclass
class Localization:
    """Organ masks (boolean, on the target grid; :data:`ORGANS` plus ``kidney``), landmarks (LPS mm), the registration's
    final metric (negative Mattes MI: lower is better), its affine (matrix, translation,
    centre; atlas → target points) and per organ the Dice of its first refinement pass with
    its warped atlas mask (``refinement_dice``: low where the atlas put the organ on other
    tissue; later passes follow an organ beyond the atlas's mask on purpose). ``extent``:
    per organ whose mask for measurement differs from its searched one, that mask: an organ
    of ``extent_organs`` whose following ended (``LocalizeParams.follow_passes``), trimmed
    of leaks, and an organ of ``trim_both_sides`` that lost tissue unlike its core
    (:func:`trim_leak`); ``organs`` holds the vessel stage's search region, and
    :attr:`measured` merges the two. ``affine`` also records the snap shifts, the tube
    tracks and, per organ refined in passes, the passes kept, whether they ended, the
    searched and extent volumes and the volume trimmed (mL)."""

    organs: dict[str, np.ndarray]
    landmarks: dict[str, list[float]] = field(default_factory=dict)
    metric: float = float("nan")
    affine: dict = field(default_factory=dict)
    refinement_dice: dict[str, float] = field(default_factory=dict)
    extent: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def measured(self) -> dict[str, np.ndarray]:
        """The organs as measured: each organ's ``extent`` where it has one, else its
        searched mask."""
        return self.organs | self.extent

    def label_map(self) -> np.ndarray:
        """``uint8`` label map: 1 + index in :data:`ORGANS`, 0 elsewhere."""
        shape = next(iter(self.organs.values())).shape
        out = np.zeros(shape, np.uint8)
        for i, name in enumerate(ORGANS, 1):
            if name in self.organs:
                out[self.organs[name] & (out == 0)] = i
        return out

    def summary(self) -> dict:
        return {"metric": self.metric, "landmarks": self.landmarks, "affine": self.affine,
                "refinement_dice": self.refinement_dice}


@dataclass(frozen=True)
class Atlas:
    ct: Image
    labels: np.ndarray
    names: tuple[str, ...]
    confluence_mm: np.ndarray


@functools.lru_cache(maxsize=1)
def load_atlas() -> Atlas:
    """The bundled abdominal CT atlas (see ``chain/atlas/NOTICE.txt``)."""
    ref = resources.files("vasomics.chain").joinpath("atlas/abdomen_ct_atlas.npz")
    with resources.as_file(ref) as path, np.load(path) as z:
        ct = Image(z["ct"], spacing=tuple(z["spacing"]), origin=tuple(z["origin"]),
                   direction=z["direction"], modality="CT")
        labels = z["labels"]
        names = tuple(str(n) for n in z["label_names"])
    pv = labels == names.index("portal_vein")
    # Confluence: the portal/splenic voxel closest to the middle of aorta and IVC.
    centre = np.mean([np.argwhere(labels == names.index(n)).mean(0) for n in ("aorta", "ivc")],
                     axis=0)
    idx = np.argwhere(pv)
    conf = idx[np.argmin(np.linalg.norm((idx - centre) * ct.spacing, axis=1))]
    return Atlas(ct, labels, names, ct.index_to_physical(conf)[0])


def _sitk(image: Image, array=None):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(image.array if array is None else array))
    img.SetSpacing(tuple(float(s) for s in image.spacing[::-1]))
    img.SetOrigin(tuple(float(o) for o in image.origin))
    img.SetDirection(tuple(float(d) for d in np.asarray(image.direction).ravel()))
    return img


def _block_mean(image: Image, target_mm: float) -> Image:
    """Reduce ``image`` by integer block averaging to about ``target_mm`` voxels."""
    f = [max(1, int(round(target_mm / s))) for s in image.spacing]
    a = np.asarray(image.array, np.float32)
    shape = [n // k for n, k in zip(a.shape, f, strict=True)]
    if min(shape) < 2:
        f = [1 if n // k < 2 else k for n, k in zip(a.shape, f, strict=True)]
        shape = [n // k for n, k in zip(a.shape, f, strict=True)]
    a = a[: shape[0] * f[0], : shape[1] * f[1], : shape[2] * f[2]]
    a = a.reshape(shape[0], f[0], shape[1], f[1], shape[2], f[2]).mean(axis=(1, 3, 5))
    # the centre of block 0 sits half a block in from voxel 0
    shift = np.asarray([(k - 1) / 2 for k in f])
    origin = image.index_to_physical(shift[None])[0]
    return Image(a, spacing=tuple(s * k for s, k in zip(image.spacing, f, strict=True)),
                 origin=tuple(origin), direction=image.direction, modality="CT")


def _body(array: np.ndarray) -> np.ndarray:
    return largest_component(array > -400)


def _body_frame(image: Image) -> tuple[np.ndarray, float]:
    """Body centroid (LPS mm) and mean left-right body width (mm) of an image."""
    body = _body(np.asarray(image.array))
    if not body.any():
        raise InputError("no body found in the image (nothing above -400 HU)")
    idx = np.argwhere(body)
    centroid = image.index_to_physical(idx.mean(axis=0)[None])[0]
    xs = image.index_to_physical(idx)[:, 0]
    width = float(np.percentile(xs, 99) - np.percentile(xs, 1))
    return centroid, width


def _registration(fixed, moving, fixed_mask, params: LocalizeParams, iterations: int,
                  scales: bool = True):
    import SimpleITK as sitk

    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=48)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(params.sampling_fraction, params.seed)
    reg.SetMetricFixedMask(fixed_mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsGradientDescent(learningRate=1.0, numberOfIterations=iterations,
                                      convergenceMinimumValue=1e-6, convergenceWindowSize=10)
    if scales:
        reg.SetOptimizerScalesFromPhysicalShift()
    return reg


@contextmanager
def _single_threaded_itk():
    """ITK on one thread inside the block: multithreaded registration sums the sampled joint
    histogram in whatever order the thread pool runs, so two runs on the same scan gave
    different transforms (metric -0.135 vs -0.157 on the thoracic CT angiogram); on one
    thread they are identical, at the same CPU time."""
    import SimpleITK as sitk

    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


def register_atlas(image: Image, params: LocalizeParams | None = None):
    """Affine (optionally + B-spline) transform mapping atlas points to target points, and
    its final metric. ``image`` is the target CT in HU. Reproducible: ITK runs on one
    thread here (:func:`_single_threaded_itk`)."""
    with _single_threaded_itk():
        return _register_atlas(image, params)


def _register_atlas(image: Image, params: LocalizeParams | None):
    import SimpleITK as sitk

    p = params or LocalizeParams()
    atlas = load_atlas()
    small = _block_mean(image, p.registration_spacing_mm)
    clip = (-1000.0, 1200.0)
    fixed = sitk.Cast(_sitk(atlas.ct, np.clip(atlas.ct.array, *clip).astype(np.float32)),
                      sitk.sitkFloat32)
    moving = _sitk(small, np.clip(small.array, *clip).astype(np.float32))
    atlas_body = _body(atlas.ct.array)
    fixed_mask = _sitk(atlas.ct, ndimage.binary_dilation(atlas_body, iterations=2)
                       .astype(np.uint8))
    c_a, w_a = _body_frame(atlas.ct)
    c_t, w_t = _body_frame(small)
    scale = float(np.clip(w_t / w_a, 0.7, 1.4))
    # z offsets: where the atlas slab centre can land inside the target's z range
    corners = small.index_to_physical(np.array([[0, 0, 0], [small.shape[0] - 1, 0, 0]]))
    z_lo, z_hi = sorted(corners[:, 2])
    half = 0.5 * (atlas.ct.shape[0] - 1) * atlas.ct.spacing[0] * scale
    if z_hi - z_lo <= 2 * half:
        candidates = [0.5 * (z_lo + z_hi)]
    else:
        candidates = list(np.arange(z_lo + half, z_hi - half + 1e-6, p.z_search_step_mm))
    starts = []
    for z in candidates:
        tr = sitk.AffineTransform(3)
        tr.SetCenter(tuple(float(v) for v in c_a))
        tr.SetMatrix(tuple((np.eye(3) * scale).ravel()))
        tr.SetTranslation((float(c_t[0] - c_a[0]), float(c_t[1] - c_a[1]), float(z - c_a[2])))
        reg = _registration(fixed, moving, fixed_mask, p, 1)
        reg.SetInitialTransform(tr, inPlace=True)
        try:
            value = reg.MetricEvaluate(fixed, moving)
        except RuntimeError:  # too few samples overlap
            continue
        starts.append((value, tr))
    if not starts:
        raise InputError("atlas and image do not overlap at any offset (is this an "
                         "abdominal CT?)")
    starts.sort(key=lambda s: s[0])
    results = []  # (metric, transform, plausible liver) per refined start
    for _, tr in starts[: p.n_starts]:
        reg = _registration(fixed, moving, fixed_mask, p, p.iterations)
        reg.SetShrinkFactorsPerLevel([2, 1])
        reg.SetSmoothingSigmasPerLevel([4.0, 2.0])
        reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
        reg.SetInitialTransform(tr, inPlace=True)
        try:
            reg.Execute(fixed, moving)
            value = reg.MetricEvaluate(fixed, moving)
        except RuntimeError:
            continue
        score = value + p.anisotropy_weight * _anisotropy(tr)
        results.append((score, tr, _liver_plausible(small, atlas, tr, p.liver_min_hu), value))
    if not results:
        raise InputError("atlas registration failed at every start")
    score, affine, plausible, value = min(results, key=lambda r: r[0])
    if not plausible:  # the best fit put the liver on fat: a near-equal fit that did not
        near = [r for r in results
                if r[2] and r[0] <= score + p.liver_gate_tolerance * abs(score)]
        if near:
            score, affine, _, value = min(near, key=lambda r: r[0])
    transform = affine
    if p.bspline:
        mesh = [max(1, int(round(sz * sp / p.bspline_grid_mm))) for sz, sp in
                zip(fixed.GetSize(), fixed.GetSpacing(), strict=True)]
        bs = sitk.BSplineTransformInitializer(fixed, mesh)
        composite = sitk.CompositeTransform([affine, bs])
        reg = _registration(fixed, moving, fixed_mask, p, p.bspline_iterations, scales=False)
        reg.SetOptimizerAsLBFGSB(numberOfIterations=p.bspline_iterations)
        reg.SetInitialTransform(composite, inPlace=True)
        try:
            reg.Execute(fixed, moving)
            value = reg.MetricEvaluate(fixed, moving)
            transform = composite
        except RuntimeError:
            log.warning("B-spline stage failed; keeping the affine registration")
    return transform, affine, float(value)


def _anisotropy(transform) -> float:
    """ln of the largest over the smallest singular value of an affine transform's matrix:
    0 for a similarity, 0.28 for a cranio-caudal scale of 0.76 against 1.0 in-plane."""
    sv = np.linalg.svd(np.asarray(transform.GetMatrix(), float).reshape(3, 3),
                       compute_uv=False)
    return float(np.log(sv[0] / max(sv[-1], 1e-9)))


def _liver_plausible(target: Image, atlas: Atlas, transform, min_hu: float,
                     n_points: int = 2000) -> bool:
    """Whether the atlas liver, mapped by ``transform`` (atlas points to target points),
    lands on a target median of at least ``min_hu`` (HU): on phantom 517 (delayed, 2.5 mm
    slices) the start with the best mutual information put the liver 25 mm low, on fat and
    bowel (-13 HU), and the localized liver read -30 HU (Dice 0); its other starts read
    45-51 HU. Samples up to ``n_points`` liver voxels; True when none lands in the target."""
    idx = np.argwhere(atlas.labels == atlas.names.index("liver"))
    idx = idx[:: max(1, len(idx) // n_points)]
    points = [transform.TransformPoint(tuple(float(v) for v in q))
              for q in atlas.ct.index_to_physical(idx)]
    j = np.round(target.physical_to_index(np.asarray(points))).astype(int)
    inside = np.all((j >= 0) & (j < np.asarray(target.shape)), axis=1)
    if not inside.any():
        return True
    return bool(np.median(np.asarray(target.array)[tuple(j[inside].T)]) >= min_hu)


def _warp_labels(image: Image, transform) -> tuple[np.ndarray, np.ndarray]:
    """Atlas label map resampled onto the target grid (nearest neighbour), and the mask of
    target voxels that the atlas covers."""
    import SimpleITK as sitk

    atlas = load_atlas()
    ref = sitk.Image([int(n) for n in image.shape[::-1]], sitk.sitkUInt8)
    ref.SetSpacing(tuple(float(s) for s in image.spacing[::-1]))
    ref.SetOrigin(tuple(float(o) for o in image.origin))
    ref.SetDirection(tuple(float(d) for d in np.asarray(image.direction).ravel()))
    if isinstance(transform, sitk.AffineTransform):
        inverse = transform.GetInverse()
    else:  # composite affine + B-spline: invert through a displacement field
        field_ = sitk.TransformToDisplacementField(
            transform, sitk.sitkVectorFloat64, ref.GetSize(), ref.GetOrigin(),
            ref.GetSpacing(), ref.GetDirection())
        inverse = sitk.DisplacementFieldTransform(sitk.InvertDisplacementField(field_))
    moving = _sitk(atlas.ct, atlas.labels)
    warped = sitk.Resample(moving, ref, inverse, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    cover = _sitk(atlas.ct, np.ones(atlas.labels.shape, np.uint8))
    covered = sitk.Resample(cover, ref, inverse, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayFromImage(warped), sitk.GetArrayFromImage(covered).astype(bool)


def localize(image: Image, params: LocalizeParams | None = None,
             noise_sd_hu: float | None = None) -> Localization:
    """Localize :data:`ORGANS` in a CT (``image`` in HU, any grid) and the portal/splenic
    confluence; see the module docstring. Raises :class:`InputError` when the atlas cannot
    be placed at all (an organ missing from the field of view gives an empty mask)."""
    p = params or LocalizeParams()
    full = image
    image = _block_mean(full, p.working_spacing_mm)
    transform, affine, metric = register_atlas(image, p)
    atlas = load_atlas()
    warped, covered = _warp_labels(image, transform)
    organs: dict[str, np.ndarray] = {}
    dice: dict[str, float] = {}
    shifts: dict[str, list[float]] = {}
    tracks: dict[str, dict] = {}
    medians: dict[str, float] = {}  # organ intensity (HU) from refinement
    extent: dict[str, np.ndarray] = {}  # extent_organs followed on to their end
    passes: dict[str, dict] = {}  # refinement passes kept per organ, for the record
    claimed = np.zeros(image.shape, bool)
    priors = {name: warped == atlas.names.index(name) for name in CLAIM_ORDER}
    for name in CLAIM_ORDER:
        if p.refine and name in p.snap_organs and priors[name].any():
            priors[name], shift = snap_organ(image, priors[name], p, noise_sd_hu,
                                             p.snap_z_mm.get(name, 0.0))
            if shift is not None:
                shifts[name] = shift
    # later passes may not take the core (deeper than core_mm) of another organ's prior
    cores = {name: _core(m, image.spacing, p.core_mm) for name, m in priors.items()
             if any(v > 1 for v in p.refine_passes.values()) and m.any()}
    del warped
    for name in CLAIM_ORDER:
        prior = priors[name]
        if p.refine and prior.any():
            refined, mu, sd = refine_organ(image, prior, claimed, p, noise_sd_hu)
            # agreement with the atlas: of the first pass (later ones follow the organ
            # beyond the atlas's mask on purpose)
            dice[name] = _dice(prior, refined)
            if p.refine_passes.get(name, 1) > 1:
                others = claimed.copy()
                for other, core in cores.items():
                    if other != name:
                        others |= core
                (refined, mu, sd), ended, record = _further_passes(
                    image, name, (refined, mu, sd), others, p, noise_sd_hu)
                if ended is not None:
                    extent[name] = _trimmed(image, _extend(
                        image, ended[0], covered, claimed, name, p, *ended[1:]), p, record)
                passes[name] = record
            medians[name] = mu
            refined = _extend(image, refined, covered, claimed, name, p, mu, sd)
            if name in p.extent_organs and passes.get(name, {}).get("ended") is False:
                # still growing after follow_passes: leaking, and measured as searched
                refined = _trimmed(image, refined, p, passes[name])
            if name == "aorta":
                refined = round_tube(refined, image.spacing)
            separation = abs(mu - medians.get("liver", np.inf)) / sd
            if name == "ivc":
                if "liver" in medians and separation >= p.track_below_sd:
                    refined = sections_of_own_hu(refined, image.array, mu, medians["liver"],
                                                 p.ivc_area_ratio)
                refined = one_section_per_slice(refined, image.spacing, p.ivc_opening_mm)
            blocked = claimed
            # a tube of the liver's density (the IVC in arterial and delayed scans, the
            # aorta in delayed ones): growth stopped where the liver touches it and the
            # liver's refinement took it, so it is tracked and may take it back
            if name in p.track_tubes and refined.any() and separation < p.track_below_sd:
                blocked = claimed & ~organs["liver"]
                refined, info = track_tube(image.array, refined, blocked, mu, sd,
                                           image.spacing, covered, p.tube_track)
                if info:
                    tracks[name] = info | {"separation_sd": round(float(separation), 2)}
            refined &= ~blocked
            if "liver" in organs:
                organs["liver"] &= ~refined
            for other in extent:
                if other != name:
                    extent[other] &= ~refined
        else:
            refined = prior & ~claimed
        organs[name] = refined
        claimed |= refined
    confluence = np.asarray(transform.TransformPoint(tuple(float(v) for v in
                                                           atlas.confluence_mm)))
    aff = {"matrix": list(affine.GetMatrix()), "translation": list(affine.GetTranslation()),
           "center": list(affine.GetCenter()), "anisotropy": round(_anisotropy(affine), 4)}
    for name in p.trim_both_sides:  # after every claim: the kidneys keep their masks
        if p.refine and name in organs and organs[name].any() and name not in extent:
            trimmed = _trimmed(image, organs[name], p, passes.setdefault(name, {}), "both")
            if np.count_nonzero(trimmed) < np.count_nonzero(organs[name]):
                extent[name] = trimmed
    organs["kidney"] = organs.pop("kidney_left") | organs.pop("kidney_right")
    factors = [int(round(a / b)) for a, b in zip(image.spacing, full.spacing, strict=True)]
    organs = {k: _expand(v, factors, full.shape) for k, v in organs.items()}
    extent = {k: _expand(v, factors, full.shape) for k, v in extent.items()}
    if shifts:
        aff["snap_shift_mm"] = shifts
    if tracks:
        aff["tube_track"] = tracks
    ml = float(np.prod(full.spacing)) / 1e3
    for name, record in passes.items():  # organ volumes: the searched mask, the extent
        if name not in organs:  # a kidney: helper organ merged above, its volume unmeasured
            continue
        record["searched_ml"] = round(np.count_nonzero(organs[name]) * ml, 1)
        if name in extent:
            record["extent_ml"] = round(np.count_nonzero(extent[name]) * ml, 1)
    if passes:
        aff["refinement_passes"] = passes
    return Localization(organs, {"portal_confluence": confluence.tolist()}, metric, aff, dice,
                        extent)


def _further_passes(image: Image, name: str, first, others: np.ndarray,
                    p: LocalizeParams, noise_sd_hu: float | None):
    """Refinement passes after the ``first`` (mask, median HU, SD HU) of one organ, never
    into ``others``. Returns the result after at most ``refine_passes[name]`` passes (the
    searched mask) and, for an organ of ``extent_organs``, its measured extent: the searched
    mask followed on by thick growth (:func:`_passes`) up to ``follow_passes`` in all, when
    following ends there with a different mask; else None (an organ still growing then is
    leaking into tissue of its density). Third, a record: the passes kept in all and whether
    the last passes ended before their limit."""
    follow = name in p.follow_organs
    limit = p.refine_passes[name]
    searched, ended, done = _passes(image, first, others, p, noise_sd_hu, limit - 1, follow)
    if name not in p.extent_organs or (follow and ended):
        return searched, None, {"passes": 1 + done, "ended": ended}
    extent, ended, more = _passes(image, searched, others, p, noise_sd_hu,
                                  p.follow_passes - limit, follow=True)
    return (searched, extent if ended and extent is not searched else None,
            {"passes": 1 + done + more, "ended": ended})


def _trimmed(image: Image, organ: np.ndarray, p: LocalizeParams, record: dict,
             sides: str = "low") -> np.ndarray:
    """:func:`trim_leak` of a measured organ, the volume trimmed (mL) in ``record``."""
    out = trim_leak(image, organ, p, sides)
    record["leak_trimmed_ml"] = round(float(np.count_nonzero(organ & ~out))
                                      * float(np.prod(image.spacing)) / 1e3, 1)
    return out


def trim_leak(image: Image, organ: np.ndarray, p: LocalizeParams, sides: str = "low"
              ) -> np.ndarray:
    """``organ`` (a measured organ mask, on ``image``'s grid) without the tissue it leaked
    into: an arterial-phase liver grows into the paraspinal and abdominal-wall muscle, a
    few HU darker (48 against 56 HU under 12 HU of noise on phantom 603), and then either
    never ends following or ends inside the muscle (618). It holds tissue of a lower
    density than its core, which the voxel-wise refinement cannot tell apart but its mean
    over a few mm can. Each voxel's HU is averaged over the organ's own voxels with
    Gaussian weights of SD ``leak_smoothing_mm`` (normalized convolution: the fat beyond
    the organ's border does not darken its rim) and compared with the median and robust SD
    (1.4826 MAD) of those means in the organ's core (deeper than ``core_mm``, at least 30
    voxels). Voxels more than ``leak_sd_factor`` SDs below (``sides`` "low") or away from
    ("both") the median, opened by a ball of ``leak_body_mm`` (a body of tissue, not the
    organ's partial-volume border, which reads low too), leave the organ, which keeps the
    component holding its core, holes filled slice by slice (a dark lesion inside stays, a
    brighter body does not return inside the rim it leaves). The liver is trimmed on the low side only: its vessels read high and belong to it; the
    spleen on both (one that took a kidney's pole). Returns the trimmed mask (``organ``
    unchanged where nothing is trimmed or no core is found)."""
    if sides not in ("low", "both"):
        raise ValueError(f"sides must be 'low' or 'both', not {sides!r}")
    spacing = np.asarray(image.spacing, float)
    core = _core(organ, image.spacing, p.core_mm)
    if np.count_nonzero(core) < 30:
        return organ
    pad = np.ceil(3 * p.leak_smoothing_mm / spacing).astype(int) + 1
    box = bounding_box(organ, pad)
    sub = organ[box]
    sigma = p.leak_smoothing_mm / spacing
    weight = ndimage.gaussian_filter(sub.astype(np.float32), sigma)
    smooth = ndimage.gaussian_filter(np.where(sub, np.asarray(image.array[box], np.float32),
                                              0), sigma) / np.maximum(weight, 1e-6)
    mu, sd = organ_intensity(smooth[core[box]], 0.0)
    away = mu - smooth if sides == "low" else np.abs(smooth - mu)
    unlike = sub & (away > p.leak_sd_factor * max(sd, 1e-3))
    body = ball_opening(unlike, spacing, p.leak_body_mm)
    if not body.any():
        return organ
    kept = sub & ~body
    lab, n = ndimage.label(kept)
    hits = np.bincount(lab[core[box] & kept], minlength=n + 1)
    hits[0] = 0
    if hits.max() == 0:
        return organ
    # holes filled: a dark lesion inside stays, a brighter body does not come back inside
    # the partial-volume rim it leaves (which reads like the organ)
    kept = fill_holes_per_slice(lab == int(np.argmax(hits))) & sub & ~(body & (smooth > mu))
    out = np.zeros_like(organ)
    out[box] = kept
    return out


def _passes(image: Image, start, others: np.ndarray, p: LocalizeParams,
            noise_sd_hu: float | None, n: int, follow: bool):
    """Up to ``n`` refinement passes from ``start`` (mask, median HU, SD HU), each
    re-centred on the previous result. Following (``follow``) keeps only thick growth and
    ends at the first pass that changes less than ``follow_min_growth`` of the volume;
    otherwise passes end at the first that only creeps along the border (Dice with the
    previous pass ``refine_converged_dice`` or more). The ending pass is dropped. Returns
    the result, whether passes ended before ``n`` and how many were kept."""
    current = start
    for done in range(n):
        if not current[0].any():
            return current, True, done
        again = refine_organ(image, current[0], others, p, noise_sd_hu)
        if follow:
            kept = thick_growth(again[0], current[0], image.spacing, p.follow_opening_mm)
            if np.count_nonzero(kept ^ current[0]) < (p.follow_min_growth
                                                      * np.count_nonzero(current[0])):
                return current, True, done
            again = (kept, *again[1:])
        elif _dice(current[0], again[0]) >= p.refine_converged_dice:
            return current, True, done
        current = again
    return current, False, n


def _extend(image: Image, organ: np.ndarray, covered: np.ndarray, claimed: np.ndarray,
            name: str, p: LocalizeParams, mu: float, sd: float) -> np.ndarray:
    """``organ`` grown beyond the atlas's slab (outside ``covered``) when it is one of
    ``extend_organs`` (:func:`extend_beyond_atlas`), up to the first leak: a tube's slice
    area leap (``tube_area_ratio``), an organ's (``organ_area_step``)."""
    if name not in p.extend_organs or covered.all():
        return organ
    grown = extend_beyond_atlas(image, organ, covered, claimed, mu, sd, p,
                                p.extend_opening_mm.get(name, 4.0))
    if name in TUBES:
        return _stop_tube_leaks(grown, organ, p.tube_area_ratio)
    return _stop_area_jumps(grown, organ, p.organ_area_step)


def _core(mask: np.ndarray, spacing, depth_mm: float) -> np.ndarray:
    """Voxels of ``mask`` deeper than ``depth_mm`` (distance transform in its bounding box)."""
    out = np.zeros_like(mask)
    box = bounding_box(mask)
    if box is None:
        return out
    out[box] = edt.edt(np.pad(mask[box], 1), anisotropy=spacing,
                       parallel=2)[1:-1, 1:-1, 1:-1] > depth_mm
    return out


def _expand(mask: np.ndarray, factors, shape) -> np.ndarray:
    """Undo :func:`_block_mean` for a mask: repeat each block, replicate the last one over
    the voxels the block grid dropped. Only the mask's bounding box is filled (a full-size
    ``np.repeat`` took 1.3 s per organ at 300 x 512 x 512)."""
    out = np.zeros(shape, bool)
    box = bounding_box(mask)
    if box is None:
        return out
    index, target = [], []
    for b, f, n, m in zip(box, factors, shape, mask.shape, strict=True):
        f = max(int(f), 1)
        stop = n if b.stop == m else min(b.stop * f, n)  # the last block covers the rest
        full = np.arange(b.start * f, stop)
        index.append(np.minimum(full // f, m - 1) - b.start)
        target.append(slice(b.start * f, stop))
    block = mask[box]
    for axis, i in enumerate(index):  # one axis at a time: faster than an np.ix_ gather
        block = block.take(i, axis=axis)
    out[tuple(target)] = block
    return out


def extend_beyond_atlas(image: Image, organ: np.ndarray, covered: np.ndarray,
                        claimed: np.ndarray, mu: float, sd: float, params: LocalizeParams,
                        opening_mm: float) -> np.ndarray:
    """Grow ``organ`` into target voxels the atlas does not cover: voxels within
    ``mu ± 2.5 sd`` HU, opened by a ball of ``opening_mm`` (cutting thin bridges to
    neighbours of similar density), connected to the organ where it touches the atlas
    boundary."""
    # work in a box: the organ's in-plane extent plus a margin, all slices
    pad = [0] + [int(np.ceil(params.extend_margin_mm / sp)) for sp in image.spacing[1:]]
    box = (slice(0, organ.shape[0]),) + bounding_box(organ, pad)[1:]
    org, cov, clm = organ[box], covered[box], claimed[box]
    touch = org & ndimage.binary_dilation(~cov)
    if not touch.any():
        return organ
    hu = image.array[box]
    cand = ~cov & ~clm & (hu > mu - 2.5 * sd) & (hu < mu + 2.5 * sd)
    cand &= ball_opening(cand, image.spacing, opening_mm)
    cand = fill_holes_per_slice(cand) & ~cov & ~clm
    lab, _ = ndimage.label(cand | org)
    keep = np.unique(lab[touch])
    keep = keep[keep > 0]
    out = organ.copy()
    out[box] |= np.isin(lab, keep) & cand
    return out


def snap_organ(image: Image, prior: np.ndarray, params: LocalizeParams,
               noise_sd_hu: float | None = None, z_mm: float = 0.0
               ) -> tuple[np.ndarray, list[float] | None]:
    """Move a warped organ mask in-plane (and up to ``z_mm`` cranio-caudally, on a ~5 mm
    lattice) to where it stands out from its surroundings.

    Every integer-voxel shift ``(dy, dx)`` within ``snap_mm`` is scored by
    ``max(median(inside) − median(ring), 0) / max(1.4826 MAD(inside), noise)`` (0 when the
    inside's median is below 0 HU: fat or air), the ring being the voxels within 6 mm outside
    the shifted mask (HU): the organ is brighter than what surrounds it. A registration that
    lands the aorta a few millimetres off puts part of the mask on fat or bone: the inside
    then spreads and the contrast drops. The best shift is taken only when it beats the
    unshifted score by ``snap_gain``; returns the mask and the shift (``[dy, dx]`` mm, plus
    ``dz`` when ``z_mm`` > 0) or ``None``."""
    p = params
    sp = image.spacing
    ring_mm = 6.0
    rz = int(z_mm // sp[0])
    q = [rz + int(np.ceil(ring_mm / sp[0])) + 1 if rz else 0] + [
        int(np.ceil((p.snap_mm + ring_mm) / s)) + 1 for s in sp[1:]]
    box = bounding_box(prior, q)
    sub = prior[box]
    hu = np.asarray(image.array[box], np.float32)
    outside = edt.edt(~sub, anisotropy=sp, parallel=2)
    ring = (outside > 0) & (outside <= ring_mm)
    nz, ny, nx = sub.shape
    flat_hu = hu.ravel()
    inside_at, ring_at = np.flatnonzero(sub), np.flatnonzero(ring)
    floor = max(float(noise_sd_hu or 0.0), 1.0)

    def bounds_of(at: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per axis, the shifts that keep each voxel of ``at`` in the box: lo <= d < hi."""
        return [(-c, n - c) for c, n in zip(np.unravel_index(at, sub.shape), sub.shape,
                                            strict=True)]

    inside_bounds, ring_bounds = bounds_of(inside_at), bounds_of(ring_at)

    def kept(bounds, shift: tuple[int, int, int]) -> np.ndarray:
        ok = np.ones(len(bounds[0][0]), bool)
        for (lo, hi), d in zip(bounds, shift, strict=True):
            if d:
                ok &= (lo <= d) & (d < hi)
        return ok

    def score(dy: int, dx: int, dz: int = 0) -> float:
        ok, ok2 = kept(inside_bounds, (dz, dy, dx)), kept(ring_bounds, (dz, dy, dx))
        if ok.mean() < 0.9 or ok2.mean() < 0.5:
            return -np.inf
        step = (dz * ny + dy) * nx + dx
        a = flat_hu[inside_at[ok] + step]
        ma = np.median(a)
        if ma < 0.0:  # organs and vessels are soft tissue or brighter, never fat or air
            return 0.0
        contrast = ma - np.median(flat_hu[ring_at[ok2] + step])
        if contrast <= 0.0:
            return 0.0
        return float(contrast / max(1.4826 * np.median(np.abs(a - ma)), floor))

    ry, rx = (int(p.snap_mm // s) for s in sp[1:])
    step = max(1, int(round(3.0 / min(sp[1:]))))  # coarse pass on a ~3 mm lattice
    zstep = max(1, int(round(5.0 / sp[0])))
    shifts = [(dy, dx, dz) for dy in range(-ry, ry + 1, step)
              for dx in range(-rx, rx + 1, step) for dz in range(-rz, rz + 1, zstep)
              if (dy * sp[1]) ** 2 + (dx * sp[2]) ** 2 <= p.snap_mm ** 2]
    coarse = dict(zip(shifts, threaded_map(score, shifts), strict=True))
    by, bx, bz = max(coarse, key=coarse.get)
    shifts = [(dy, dx, bz) for dy in range(by - step + 1, by + step)
              for dx in range(bx - step + 1, bx + step)]
    fine = dict(zip(shifts, threaded_map(score, shifts), strict=True))
    fine.update(coarse)
    (dy, dx, dz), best = max(fine.items(), key=lambda kv: kv[1])
    base = fine.get((0, 0, 0), score(0, 0))
    if (dy, dx, dz) == (0, 0, 0) or not best > p.snap_gain * max(base, 1e-6):
        return prior, None
    out = np.zeros_like(prior)
    shifted = np.zeros_like(sub)
    ys, yd = (slice(0, ny - dy), slice(dy, ny)) if dy >= 0 else (slice(-dy, ny),
                                                                 slice(0, ny + dy))
    xs, xd = (slice(0, nx - dx), slice(dx, nx)) if dx >= 0 else (slice(-dx, nx),
                                                                 slice(0, nx + dx))
    zs, zd = (slice(0, nz - dz), slice(dz, nz)) if dz >= 0 else (slice(-dz, nz),
                                                                 slice(0, nz + dz))
    shifted[zd, yd, xd] = sub[zs, ys, xs]
    out[box] = shifted
    shift = [round(dy * sp[1], 2), round(dx * sp[2], 2)]
    return out, shift + [round(dz * sp[0], 2)] if rz else shift


def thick_growth(new: np.ndarray, old: np.ndarray, spacing, radius_mm: float) -> np.ndarray:
    """``new`` without the voxels it adds to ``old`` that are thin or reach ``old`` only
    through thin parts.

    An added voxel is kept when it lies in the opening of ``old | added`` by a ball of
    ``radius_mm`` (physical mm, ``spacing`` in z, y, x order) and is connected to ``old``
    through kept voxels. Voxels of ``old`` that ``new`` no longer holds are dropped (the
    re-centred pass may trim the previous one's border)."""
    add = new & ~old
    if not add.any():
        return new
    box = bounding_box(add | old)
    a = np.pad(add[box], 1)
    u = np.pad((add | old)[box], 1)
    opened = ball_opening(u, spacing, radius_mm) & a
    keep_old = np.pad(old[box], 1)
    lab, _ = ndimage.label(opened | keep_old)
    ids = np.unique(lab[keep_old])
    kept = np.isin(lab, ids[ids > 0]) & opened
    out = new & old
    out[box] |= kept[1:-1, 1:-1, 1:-1]
    return out


def _stop_area_jumps(grown: np.ndarray, inside: np.ndarray, step: float) -> np.ndarray:
    """Keep the slices of ``grown`` beyond the atlas part ``inside`` outwards while each
    slice's area stays within ``step`` times the largest section of ``inside`` and (from the
    second slice on) within ``step`` times the previous kept slice's area plus 20 voxels;
    clear from the first slice that jumps (a leak) on."""
    area_in = inside.sum(axis=(1, 2))
    rows = np.nonzero(area_in)[0]
    if rows.size == 0:
        return inside
    cap = step * float(area_in.max())
    area = grown.sum(axis=(1, 2))
    out = grown.copy()
    for direction, first in ((1, rows.max()), (-1, rows.min())):
        k, prev = first + direction, np.inf  # the first slice beyond: only the cap
        while 0 <= k < len(area) and 0 < area[k] <= min(step * prev + 20, cap):
            prev = float(area[k])
            k += direction
        if 0 <= k < len(area):
            if direction > 0:
                out[k:] = False
            else:
                out[: k + 1] = False
    return out


def _stop_tube_leaks(grown: np.ndarray, inside: np.ndarray, ratio: float) -> np.ndarray:
    """Keep the slices of ``grown`` (a vertical tube) from the atlas part ``inside`` outwards
    up to the first slice whose area exceeds ``ratio`` times the mean area of ``inside``."""
    area_in = inside.sum(axis=(1, 2))
    rows = np.nonzero(area_in)[0]
    if rows.size == 0:
        return inside
    limit = ratio * float(area_in[rows].mean())
    area = grown.sum(axis=(1, 2))
    out = grown.copy()
    for direction, start in ((1, rows.max() + 1), (-1, rows.min() - 1)):
        k = start
        while 0 <= k < len(area) and 0 < area[k] <= limit:
            k += direction
        if 0 <= k < len(area):  # clear from the first offending (or empty) slice on
            if direction > 0:
                out[k:] = False
            else:
                out[: k + 1] = False
    return out


def round_tube(mask: np.ndarray, spacing, max_area_ratio: float = 1.15) -> np.ndarray:
    """Regularize a vertical tube (the abdominal aorta) slice by slice: keep the largest
    in-plane component and replace it by the disk of the same area (at most
    ``max_area_ratio`` times the median slice area) about its centroid. Removes leaks into
    touching structures of the same density (diaphragmatic crus, vertebra)."""
    out = np.zeros_like(mask)
    areas, centres = {}, {}
    for k in np.nonzero(mask.any(axis=(1, 2)))[0]:
        comp = largest_component(mask[k])
        areas[k] = float(np.count_nonzero(comp)) * spacing[1] * spacing[2]
        centres[k] = np.argwhere(comp).mean(axis=0)
    if not areas:
        return mask
    cap = max_area_ratio * float(np.median(list(areas.values())))
    yy, xx = np.ogrid[: mask.shape[1], : mask.shape[2]]
    for k, area in areas.items():
        r2 = min(area, cap) / np.pi
        cy, cx = centres[k]
        out[k] = ((yy - cy) * spacing[1]) ** 2 + ((xx - cx) * spacing[2]) ** 2 <= r2
    return out


def sections_of_own_hu(mask: np.ndarray, hu: np.ndarray, own_hu: float, other_hu: float,
                       max_area_ratio: float) -> np.ndarray:
    """In every axial slice (NumPy axis 0) where a vertical tube's section (``mask``) holds
    more than ``max_area_ratio`` times the median section's voxels, keep the largest in-plane
    component of its voxels whose HU (``hu``: the image) lies on the tube's side of halfway
    between its median ``own_hu`` and the neighbouring tissue's ``other_hu``. The IVC's
    refinement takes liver tissue beside it where the partial-volume rim between the two
    reads closer to the IVC's median than the liver's histogram does: held-out phantom 537
    (portal venous, 2.25 mm pixels; IVC 160 HU, liver 113) gave the IVC 82-95 voxels
    against its 45 in 26 of 63 slices, liver tissue up to 11 mm from the lumen and, through
    it, the main portal vein, whose trunk the vessel stage then lost. An arterial IVC may
    read darker than the liver (512: 45 against 72 HU)."""
    areas = mask.sum(axis=(1, 2))
    if not areas.any():
        return mask
    cap = max_area_ratio * float(np.median(areas[areas > 0]))
    halfway, sign = 0.5 * (own_hu + other_hu), np.sign(own_hu - other_hu)
    out = mask.copy()
    for k in np.nonzero(areas > cap)[0]:
        out[k] = largest_component(mask[k] & (sign * (hu[k] - halfway) > 0))
    return out


def one_section_per_slice(mask: np.ndarray, spacing, opening_mm: float) -> np.ndarray:
    """Keep, in every axial slice (NumPy axis 0), one section of a vertical tube's mask (the
    IVC): the largest in-plane component, and where the slice's opening by a disk of radius
    ``opening_mm`` (mm; in-plane ``spacing``) parts it at necks narrower than twice that,
    only the voxels nearest the opening's largest piece. The IVC's refinement reaches a
    bright vessel beside it through their partial-volume gap: phantom 602 at 160×320×320 gave
    the IVC 1272 voxels of the portal trunk, 10 mm from the IVC's lumen on median, in
    sections of their own or joined to the IVC's by a bridge one or two pixels wide; the
    portal vein's lumen was lost to the vessel stage there. A section without a neck keeps
    its shape (the opening of a section a few pixels across would shave its rim)."""
    out = np.zeros_like(mask)
    sampling = tuple(float(v) for v in spacing[1:])
    for k in np.nonzero(mask.any(axis=(1, 2)))[0]:
        box = bounding_box(mask[k], 1)
        section = np.pad(mask[k][box], 1)
        core = ndimage.distance_transform_edt(section, sampling=sampling) > opening_mm
        pieces, n = ndimage.label(section & (ndimage.distance_transform_edt(
            ~core, sampling=sampling) <= opening_mm))
        if n > 1:  # a neck: each voxel goes with its nearest piece
            near = ndimage.distance_transform_edt(pieces == 0, sampling=sampling,
                                                  return_distances=False, return_indices=True)
            section &= pieces[tuple(near)] == largest_label(pieces)
        out[k][box] = largest_component(section)[1:-1, 1:-1]
    return out


def fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    """Fill holes in every axial slice (NumPy axis 0) at once: background connectivity is
    in-plane only."""
    struct = np.zeros((3, 3, 3), bool)
    struct[1] = ndimage.generate_binary_structure(2, 1)
    return fill_holes(mask, struct)


def refine_organ(image: Image, prior: np.ndarray, claimed: np.ndarray,
                 params: LocalizeParams, noise_sd_hu: float | None = None
                 ) -> tuple[np.ndarray, float, float]:
    """Intensity refinement of one warped organ mask (see the module docstring); returns
    the mask and the organ's intensity median and SD (HU)."""
    p = params
    pad = [int(np.ceil((p.band_mm + 2 * p.prior_scale_mm) / s)) for s in image.spacing]
    box = bounding_box(prior, pad)
    sub = prior[box]
    hu = np.asarray(image.array[box], np.float32)
    depth = border_distance(sub, image.spacing)
    signed = np.where(sub, depth, -depth)
    core = sub & (depth > p.core_mm)
    if np.count_nonzero(core) < 30:
        core = sub
    mu, sd = organ_intensity(hu[core], p.min_sd_hu, noise_sd_hu)
    band = (signed > -p.band_mm) & ~claimed[box]
    ring = band & ~sub
    # the posterior decides only inside the band: computed on its voxels alone
    hu_b, signed_b = hu[band], signed[band]
    lik_o = np.exp(-0.5 * ((hu_b - mu) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
    lik_b = _histogram_density(hu[ring] if ring.any() else hu_b, hu_b)
    prior_p = 1.0 / (1.0 + np.exp(-signed_b / p.prior_scale_mm))
    post = prior_p * lik_o / (prior_p * lik_o + (1 - prior_p) * lik_b + 1e-30)
    mask = np.zeros_like(band)
    mask[band] = post > 0.5
    mask = fill_holes_per_slice(mask)  # vessels inside organs
    mask &= band
    lab, n = ndimage.label(mask)
    if n > 1:
        hits = np.bincount(lab[core & mask], minlength=n + 1)
        hits[0] = 0
        keep = int(np.argmax(hits)) if hits.max() > 0 else int(np.argmax(np.bincount(
            lab.ravel())[1:]) + 1)
        mask = lab == keep
    out = np.zeros(image.shape, bool)
    out[box] = mask
    return out, mu, sd


def organ_intensity(values: np.ndarray, min_sd_hu: float, noise_sd_hu: float | None = None
                    ) -> tuple[float, float]:
    """An organ's intensity from its core's ``values`` (HU): the median, and the SD as the
    largest of 1.4826 MAD, ``min_sd_hu`` and ``noise_sd_hu``."""
    mu = float(np.median(values))
    sd = max(float(1.4826 * np.median(np.abs(values - mu))), min_sd_hu,
             float(noise_sd_hu or 0.0))
    return mu, sd


def _histogram_density(samples: np.ndarray, values: np.ndarray, bin_hu: float = 10.0
                       ) -> np.ndarray:
    """Smoothed histogram density of ``samples`` evaluated at ``values`` (HU)."""
    lo, hi = -1100.0, 3100.0
    edges = np.arange(lo, hi + bin_hu, bin_hu)
    hist, _ = np.histogram(np.clip(samples, lo, hi - 1e-3), bins=edges)
    hist = ndimage.gaussian_filter1d(hist.astype(float), 1.5) + 0.5
    hist /= hist.sum() * bin_hu
    idx = np.clip(((values - lo) / bin_hu).astype(int), 0, len(hist) - 1)
    return hist[idx].astype(np.float32)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = np.count_nonzero(a) + np.count_nonzero(b)
    return float(2 * np.count_nonzero(a & b) / s) if s else 1.0
