"""``vasomics run CT -o OUTDIR``: the CT vessel characterization chain in one command.

Stages (each a plain function from its own module; this runner only composes them, caches
their outputs in ``OUTDIR/.cache`` keyed by input hash and stage parameters, and records the
time of each in ``provenance.json``):

read → ``qc`` (header and intensity checks) → ``localize`` (atlas registration + intensity
refinement) → ``phase`` (region HU → calibrated probabilities; liver coverage check) →
``vessels`` (liver vessel segmentation and portal/hepatic separation) → ``artery``
(the hepatic artery, arterial phase only; elsewhere recorded as not applicable, its
features NaN; its voxels are removed from the venous trees; then the vessel contrast check
on the segmented vessels) → ``graph`` (centerlines) →
``naming`` → ``features`` → outputs.

Phase recognition needs the organ regions, so it runs after localization (the design lists
it before; the order of the reported results is unchanged).

Outputs (written atomically: a failure leaves OUTDIR as it was): ``qc.json``,
``phase.json``, ``organs.nii.gz`` (labels: 1 liver, 2 spleen, 3 aorta, 4 ivc, 5
portal/splenic vein where the phase stage trusted its localization, 6 kidneys),
``vessels.nii.gz`` (1 portal venous tree, 2 hepatic veins, 3 hepatic artery),
``portal.vtp``, ``hepatic.vtp``, ``artery.vtp`` (named centerlines with radii),
``artery.json`` (the artery stage's status: applicable, root, thresholds), ``features.csv``
(long format), ``summary.html`` (one page), ``params.yaml`` and ``provenance.json``; an
output this run does not produce (a stage not reached, a tree not traced) is removed from
OUTDIR if an earlier run left it (:data:`RUN_OUTPUTS`). A scan failing QC stops with the
reasons (``QCFailed``) unless ``force``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import io
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np
from pydantic import Field

from vasomics.chain.graph import GraphParams, mask_to_graph, measure_radii
from vasomics.chain.hepatic_artery import (
    HepaticArtery,
    HepaticArteryParams,
    segment_hepatic_artery,
)
from vasomics.chain.liver_vessels import LiverVesselParams, LiverVessels, segment_liver_vessels
from vasomics.chain.localize import ORGANS, Localization, LocalizeParams, localize
from vasomics.chain.naming import name_hepatic_veins, name_portal_tree
from vasomics.chain.naming.liver_artery import name_hepatic_artery
from vasomics.chain.organ_edge import OrganEdgeParams, refine_organ_borders
from vasomics.chain.phase import (
    PHASES,
    PhaseParams,
    PhaseResult,
    impute_regions,
    measure_regions,
    recognize_phase,
)
from vasomics.chain.qc import (
    QCParams,
    QCReport,
    check_coverage,
    check_image,
    check_vessel_contrast,
    estimate_noise_sd,
)
from vasomics.errors import InputError, ParameterError, VasomicsError
from vasomics.features.liver import liver_features
from vasomics.features.table import FeatureTable
from vasomics.image import Image
from vasomics.io.atomic import atomic_file, ensure_writable_dir, staged_output_dir
from vasomics.params import StageParams, dump_params_yaml, load_params, params_hash
from vasomics.provenance import provenance_record
from vasomics.vessel_graph import VesselGraph

log = logging.getLogger(__name__)

ORGAN_LABELS = {name: i for i, name in enumerate(ORGANS + ("kidney",), 1)}


class RunParams(StageParams):
    """All sections of a ``vasomics run`` parameter file."""

    qc: QCParams = Field(default_factory=QCParams, description="Quality control.")
    localize: LocalizeParams = Field(default_factory=LocalizeParams,
                                     description="Atlas localization.")
    phase: PhaseParams = Field(default_factory=PhaseParams, description="Phase recognition.")
    vessels: LiverVesselParams = Field(default_factory=LiverVesselParams,
                                       description="Liver vessels.")
    artery: HepaticArteryParams = Field(default_factory=HepaticArteryParams,
                                        description="Hepatic artery (arterial phase).")
    organ_edge: OrganEdgeParams = Field(default_factory=OrganEdgeParams, description=
                                        "Liver and spleen borders at the scan's resolution "
                                        "(organ volumes and masks written), after the "
                                        "vessel stage.")
    graph: GraphParams = Field(
        default_factory=lambda: GraphParams(break_loops=True, spur_reach_factor=1.0,
                                          thin_spur_reach_factor=2.0,
                                          radius_definition="section_area"),
        description="Centerline graphs (the venous trees and the hepatic artery are trees: "
                    "loops that are strands of one lumen are cut; terminal strands that "
                    "stay within a junction radius of their parent's wall, and stubs at most "
                    "0.6 times its width that reach less than two junction radii beyond it, "
                    "are spurs). The trees are traced and named on inscribed radii; "
                    "radius_definition is the radius reported and measured (section_area: "
                    "the inscribed radius read the named vessels' diameters 9 % low on "
                    "median).")


@dataclass
class ChainResult:
    """Everything the chain produced for one scan."""

    qc: QCReport
    phase: PhaseResult | None = None
    localization: Localization | None = None
    vessels: LiverVessels | None = None
    portal: VesselGraph | None = None
    hepatic: VesselGraph | None = None
    artery: HepaticArtery | None = None
    artery_graph: VesselGraph | None = None
    features: FeatureTable | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_cpu_seconds: dict[str, float] = field(default_factory=dict)
    noise_sd_hu: float = float("nan")
    stopped: str | None = None
    #: Localized regions the phase stage left out (refinement kept too little of the atlas
    #: mask, or a vessel's median reads as fat or air). A distrusted portal/splenic vein is
    #: neither read by the features nor written to ``organs.nii.gz``.
    distrusted: tuple[str, ...] = ()


#: Why trees traced in a delayed scan are flagged (QC ``delayed_phase_trees``): measured on
#: the 11 delayed phantoms of seeds 500-559 that pass the contrast gate (96 x 160 x 160),
#: tree length against the truth: hepatic median -0.26 (-0.58 to +0.01), portal -0.055
#: (-0.63 to +0.06; two under -0.40). The vessel-to-liver contrast in noise SDs does not
#: single out the short ones (docs/ct_chain.md, known limits; ``python
#: benchmarks/bench_ct_chain_phantoms.py --seeds 502 505 ... 559 --phases delayed --shape 96
#: 160 160``, every third seed).
DELAYED_TREES = ("delayed phase: the veins stand only a few noise SDs above the liver, thin "
                 "branches are missed and the trees read short (on phantoms the hepatic tree "
                 "26 % on median); prefer a portal venous series")

#: The chain's stages in the order they run, as named in ``provenance.json``'s stage times
#: and to the ``progress`` callback of :func:`characterize` and :func:`run_chain` (``read``
#: and ``write`` are :func:`run_chain`'s own).
STAGES = ("read", "qc", "localize", "phase", "vessels", "artery", "graph", "naming",
          "features", "write")


class _Timer:
    """Wall seconds per stage into ``record``; CPU seconds of this process (all threads,
    user + system) into ``cpu`` (the machine may be shared: CPU time is the steadier
    figure); ``progress`` (optional) is called with each stage's name as it starts."""

    def __init__(self, record: dict, cpu: dict | None = None,
                 progress: Callable[[str], None] | None = None):
        self.record = record
        self.cpu = {} if cpu is None else cpu
        self.progress = progress

    def __call__(self, name: str):
        timer = self

        class _Ctx:
            def __enter__(self):
                if timer.progress is not None:
                    timer.progress(name)
                self.t0, self.c0 = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                timer.record[name] = round(time.perf_counter() - self.t0, 3)
                timer.cpu[name] = round(time.process_time() - self.c0, 3)
                return False

        return _Ctx()


def finite_ct(image: Image) -> Image:
    """``image`` with NaN and infinite voxels (a QC failure the user forced past) read as its
    lowest finite value, air in a CT; the image itself when it has none."""
    a = image.array
    if a.dtype.kind != "f":
        return image
    ok = np.isfinite(a)
    if ok.all():
        return image
    if not ok.any():
        raise InputError("image holds no finite voxel")
    return image.with_array(np.where(ok, a, a[ok].min()))


def _without_artery(ves: LiverVessels, art: HepaticArtery) -> LiverVessels:
    """The venous trees less the artery's lumen and halo (a tube brighter than the portal
    vein is the artery; its partial-volume halo left in a venous mask is drawn as strands
    along it)."""
    if not art.mask.any():
        return ves
    taken = art.mask if art.halo is None else art.mask | art.halo
    return dataclasses.replace(ves, portal=ves.portal & ~taken, hepatic=ves.hepatic & ~taken,
                               rim=None if ves.rim is None
                               else np.where(taken, 0, ves.rim).astype(np.uint8))


def characterize(image: Image, params: RunParams | None = None, *, phase: str = "auto",
                 force: bool = False, cache_dir: Path | None = None,
                 input_key: str | None = None,
                 progress: Callable[[str], None] | None = None) -> ChainResult:
    """Run the chain on a CT ``image`` (HU). ``phase``: ``auto`` or one of
    :data:`~vasomics.chain.phase.PHASES` to override recognition. With ``cache_dir`` and
    ``input_key`` (a hash of the input), the localization and vessel stages are cached.
    ``progress`` (optional) is called with each stage's name (:data:`STAGES`) as it
    starts."""
    p = params or RunParams()
    if phase != "auto" and phase not in PHASES:
        raise ParameterError(f"phase must be auto or one of {', '.join(PHASES)}, got {phase!r}")
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    timed = _Timer(seconds, cpu, progress)
    with timed("qc"):
        qc = check_image(image, p.qc)
    result = ChainResult(qc=qc, stage_seconds=seconds, stage_cpu_seconds=cpu)
    if qc.failures() and not force:
        result.stopped = qc.summary()
        return result
    if image.ndim != 3 or image.n_channels != 1:
        raise InputError("the CT chain needs a 3D single-channel volume")
    image = finite_ct(image)
    noise = estimate_noise_sd(image.array)
    result.noise_sd_hu = noise
    with timed("localize"):
        loc = _cached(cache_dir, "localize", input_key, p.localize,
                      lambda: localize(image, p.localize, noise), _save_loc, _load_loc)
    result.localization = loc
    with timed("phase"):
        ph, hu, result.distrusted = localized_phase(image, loc, p)
        if phase != "auto":
            ph.evidence.append(f"phase set by the user to {phase} (recognized {ph.phase})")
            ph.phase = phase
        result.phase = ph
        # the liver's measured extent, so that QC's volume is the one reported
        qc.extend(check_coverage(image, loc.measured, noise, ph.phase, p.qc,
                                 loc.refinement_dice.get("liver")))
        if ph.conflict:
            qc.add("contrast_tags", "warn", None, ph.evidence[-1])
    if qc.failures() and not force:
        result.stopped = qc.summary()
        return result
    with timed("vessels"):
        # the stage reads the localization and the regions' HU: their parameters key it too
        ves = _cached(cache_dir, "vessels", input_key, (p.localize, p.phase, p.vessels),
                      lambda: segment_liver_vessels(image, loc.organs, hu, noise,
                                                    loc.landmarks.get("portal_confluence"),
                                                    p.vessels, loc.measured.get("liver")),
                      _save_ves, _load_ves)
    if ves.status != "ok":
        qc.add("vessel_trees", "warn", None, ves.status)
    if result.phase.phase == "delayed" and (ves.portal.any() or ves.hepatic.any()):
        qc.add("delayed_phase_trees", "warn", None, DELAYED_TREES)
    with timed("artery"):
        art = segment_hepatic_artery(image, result.phase.phase, loc.organs, hu, noise,
                                     ves.portal, ves.roots.get("portal_hilum"),
                                     ves.roots.get("portal"),
                                     loc.landmarks.get("portal_confluence"), p.artery)
        ves = _without_artery(ves, art)
    result.vessels, result.artery = ves, art
    qc.extend(check_vessel_contrast(image, ves.portal | ves.hepatic,
                                    loc.organs.get("liver", np.zeros_like(ves.portal)), noise,
                                    result.phase.phase, p.qc))
    if art.applicable and art.status != "ok":
        qc.add("hepatic_artery", "warn", None, art.status)
    masks = {"portal": ves.centerline_mask("portal"), "hepatic": ves.centerline_mask("hepatic"),
             "artery": art.mask}
    with timed("graph"):
        portal = _graph(image, masks["portal"], p.graph,
                        ves.roots.get("portal_trunk_end", ves.roots.get("portal")))
        hepatic = _graph(image, masks["hepatic"], p.graph, ves.roots.get("hepatic"))
        artery = _graph(image, masks["artery"], p.graph, art.root)
    with timed("naming"):
        if portal is not None:
            portal = name_portal_tree(portal, ves.roots.get("portal"))
        if hepatic is not None:
            hepatic = name_hepatic_veins(hepatic, ves.roots.get("hepatic"),
                                         ivc_radius_mm=ves.ivc_radius_mm)
        if artery is not None:
            artery = name_hepatic_artery(artery, art.root)
    with timed("features"):
        # the trees were traced and named on inscribed radii; their reported radii are
        # measured by the parameters' definition
        if p.graph.radius_definition != "inscribed":
            portal, hepatic, artery = (
                _radii(image, masks[k], p.graph, g)
                for k, g in (("portal", portal), ("hepatic", hepatic), ("artery", artery)))
        result.portal, result.hepatic, result.artery_graph = portal, hepatic, artery
        # measured: the organs' whole extent, their borders at the scan's resolution; the
        # vessel stage searched the localization's organs (chain/organ_edge.py)
        organs = refine_organ_borders(image, loc.measured, noise, p.organ_edge)
        result.localization = dataclasses.replace(loc, organs=organs, extent={})
        # the localized portal vein is read (when the portal tree names no main portal
        # vein) only where the phase stage trusted it
        read = {k: v for k, v in organs.items()
                if k != "portal_vein" or k not in result.distrusted}
        result.features = liver_features(image, read, ves.portal, ves.hepatic, portal,
                                         hepatic, noise, artery_mask=art.mask, artery=artery,
                                         hilum_margin_mm=p.vessels.hilum_margin_mm)
    return result


def localized_phase(image: Image, loc: Localization, p: RunParams
                    ) -> tuple[PhaseResult, dict[str, float], tuple[str, ...]]:
    """The chain's phase stage on a localized scan: each region's median HU (eroded,
    :func:`vasomics.chain.phase.measure_regions`) where refinement kept enough of its atlas
    mask (``phase.min_refinement_dice``, the portal vein ``portal_vein_min_refinement_dice``)
    and a vessel reads as blood (``phase.blood_min_hu``), the aorta tracked as a tube where
    its localization is not trusted, the phase recognized on those, and the regions left out
    imputed with the HU the phase model expects there. Returns the phase, the regions' HU the
    vessel stage reads and the regions left out (``ChainResult.distrusted``)."""
    unsure = sorted(r for r, d in loc.refinement_dice.items() if d < (
        p.phase.portal_vein_min_refinement_dice if r == "portal_vein"
        else p.phase.min_refinement_dice))
    hu = measure_regions(image, {k: v for k, v in loc.organs.items() if k not in unsure},
                         p.phase.erosion_mm)
    # a vessel darker than blood lies in fat or air: mislocalized, not unenhanced
    not_blood = [r for r in ("aorta", "portal_vein", "ivc")
                 if hu.get(r, np.nan) < p.phase.blood_min_hu]
    for r in not_blood:
        hu[r] = np.nan
    fallback = None
    if "aorta" in unsure or not np.isfinite(hu.get("aorta", np.nan)):
        fallback = _tracked_aorta_hu(image, p.phase)
    if fallback is not None:
        hu["aorta"] = fallback[0]
        unsure = [r for r in unsure if r != "aorta"]
        not_blood = [r for r in not_blood if r != "aorta"]
    ph = recognize_phase(hu, image.metadata, p.phase)
    if fallback is not None:
        ph.evidence.append(fallback[1])
    if not_blood:
        ph.evidence.append(f"left out (median below {p.phase.blood_min_hu:g} HU: fat or "
                           f"air, not blood): " + ", ".join(not_blood))
    if any(r in unsure for r in hu):
        ph.evidence.append("left out (refinement moved the atlas mask): "
                           + ", ".join(r for r in unsure if r in hu))
    if not_blood or any(r in unsure for r in hu):
        # the vessel stage gets the HU the phase model expects there instead
        hu = impute_regions(hu, ph.phase, p.phase)
    return ph, hu, tuple(sorted(set(unsure) | set(not_blood)))


def _tracked_aorta_hu(image: Image, params) -> tuple[float, str] | None:
    """Median HU of the aorta found by the classical CTA tracker (used when the atlas aorta
    is unreliable or empty after erosion) and a line of evidence, or None when the fallback
    is off, the scan holds no contrast-filled round lumen (the tracker's one-line
    InputError), or the lumen it tracked is too thin or ringed by bone to be the aorta
    (``aorta_fallback_min_radius_mm``, ``aorta_fallback_max_ring_hu``)."""
    if not params.aorta_fallback:
        return None
    import edt

    from vasomics.chain._grid import grown_box
    from vasomics.chain.segment.aorta import segment_aorta
    from vasomics.chain.tube_tracking import median_section_radius

    try:
        aorta = segment_aorta(image).mask.array != 0
    except InputError as exc:
        log.info("aorta fallback: %s", exc)
        return None
    radius = median_section_radius(aorta, image.spacing)
    ring_hu = float("nan")
    if aorta.any():  # the 2-6 mm shell, in the aorta's box grown by 6 mm
        box = grown_box(aorta, image.spacing, 6.0)
        dist = edt.edt(~aorta[box], anisotropy=image.spacing)
        shell = (dist > 2.0) & (dist <= 6.0)
        if shell.any():
            ring_hu = float(np.median(np.asarray(image.array)[box][shell]))
    if (not radius >= params.aorta_fallback_min_radius_mm
            or not ring_hu <= params.aorta_fallback_max_ring_hu):
        log.info("aorta fallback: the tracked lumen (radius %.1f mm, %.0f HU around it) is "
                 "not an aorta", radius, ring_hu)
        return None
    value = measure_regions(image, {"aorta": aorta}, params.erosion_mm).get("aorta")
    if value is None or not np.isfinite(value):
        return None
    return float(value), (f"aorta measured on the classical CTA tracker's mask "
                          f"({value:.0f} HU): the atlas aorta was unreliable or empty")


def _graph(image: Image, mask: np.ndarray, params: GraphParams, root) -> VesselGraph | None:
    """The tree's graph traced from ``mask`` on inscribed radii (whatever
    ``params.radius_definition`` says: the naming rules read those; :func:`_radii` then
    measures the reported ones), rooted near ``root`` (LPS mm) when given."""
    if mask is None or np.count_nonzero(mask) < 20:
        return None
    update = {"radius_definition": "inscribed"}
    if root is not None:
        update["root_point_mm"] = tuple(float(v) for v in root)
    return mask_to_graph(_cropped(image, mask), params.model_copy(update=update))


def _radii(image: Image, mask: np.ndarray, params: GraphParams,
           graph: VesselGraph | None) -> VesselGraph | None:
    """``graph`` (traced from ``mask``) with its radii measured by
    ``params.radius_definition``."""
    return None if graph is None else measure_radii(graph, _cropped(image, mask), params)


def _cropped(image: Image, mask: np.ndarray) -> Image:
    """``mask`` cropped to its bounding box grown by 2 voxels, as a mask image placed on
    ``image``'s grid."""
    from vasomics.chain._grid import bounding_box

    box = bounding_box(mask, 2)
    origin = image.index_to_physical(np.array([[b.start for b in box]]))[0]
    return Image(mask[box].astype(np.uint8), spacing=image.spacing, origin=tuple(origin),
                 direction=image.direction, modality="mask")


# ---------------------------------------------------------------------------- caching
def _cached(cache_dir, stage, input_key, stage_params, compute, save, load):
    """``compute()``, or its result stored under ``cache_dir`` for this input and the
    parameters it depends on (``stage_params``: one model or a tuple of them)."""
    if cache_dir is None or input_key is None:
        return compute()
    models = stage_params if isinstance(stage_params, tuple) else (stage_params,)
    key = f"{input_key}-{'-'.join(params_hash(m) for m in models)}"
    path = Path(cache_dir) / f"{stage}-{key}.npz"
    if path.is_file():
        try:
            log.info("stage %s: cached result %s", stage, path.name)
            return load(path)
        except (OSError, KeyError, ValueError):
            log.warning("stage %s: unreadable cache %s, recomputing", stage, path.name)
    value = compute()
    ensure_writable_dir(cache_dir)  # a folder that cannot be made: a one-line OutputError
    for old in Path(cache_dir).glob(f"{stage}-*.npz"):
        old.unlink(missing_ok=True)
    with atomic_file(path) as tmp:
        save(value, tmp)
    return value


def _save_loc(loc: Localization, path: Path) -> None:
    labels = np.zeros(next(iter(loc.organs.values())).shape, np.uint8)
    for name, value in ORGAN_LABELS.items():
        labels[loc.organs[name] & (labels == 0)] = value
    meta = json.dumps({"landmarks": loc.landmarks, "metric": loc.metric, "affine": loc.affine,
                       "refinement_dice": loc.refinement_dice})
    extent = {f"extent_{name}": mask for name, mask in loc.extent.items()}
    with open(path, "wb") as f:
        np.savez_compressed(f, labels=labels, meta=np.array(meta), **extent)


def _load_loc(path: Path) -> Localization:
    with np.load(path) as z:
        labels, meta = z["labels"], json.loads(str(z["meta"]))
        extent = {key.removeprefix("extent_"): z[key] for key in z.files
                  if key.startswith("extent_")}
    organs = {name: labels == value for name, value in ORGAN_LABELS.items()}
    return Localization(organs, meta["landmarks"], meta["metric"], meta["affine"],
                        meta["refinement_dice"], extent)


def _save_ves(ves: LiverVessels, path: Path) -> None:
    labels = ves.portal.astype(np.uint8) + 2 * (ves.hepatic & ~ves.portal) \
        + 3 * (ves.vessels & ~ves.portal & ~ves.hepatic)
    meta = json.dumps({"roots": ves.roots, "threshold_hu": ves.threshold_hu,
                       "status": ves.status, "ivc_radius_mm": ves.ivc_radius_mm})
    absent = np.zeros_like(ves.portal)
    with open(path, "wb") as f:
        np.savez_compressed(f, labels=labels.astype(np.uint8),
                            edge_layer=absent if ves.edge_layer is None else ves.edge_layer,
                            crossings=absent if ves.crossings is None else ves.crossings,
                            rim=absent.astype(np.uint8) if ves.rim is None else ves.rim,
                            meta=np.array(meta))


def _load_ves(path: Path) -> LiverVessels:
    with np.load(path) as z:
        labels, meta = z["labels"], json.loads(str(z["meta"]))
        layer = z["edge_layer"] if "edge_layer" in z.files else None
        crossings = z["crossings"] if "crossings" in z.files else None
        rim = z["rim"] if "rim" in z.files else None
    return LiverVessels(labels == 1, labels == 2, labels > 0, meta["roots"],
                        meta["threshold_hu"], meta["status"],
                        meta.get("ivc_radius_mm", float("nan")), layer, crossings, rim)


# ---------------------------------------------------------------------------- outputs
def run_chain(ct_path: str | Path, outdir: str | Path, *, params: str | Path | None = None,
              phase: str = "auto", force: bool = False,
              progress: Callable[[str], None] | None = None) -> tuple[ChainResult, Path]:
    """Read ``ct_path`` (file or DICOM folder), run :func:`characterize` and write every
    output into ``outdir``; returns the result and the path of ``summary.html``. Raises
    :class:`~vasomics.chain.qc.QCFailed` (after writing ``qc.json``) when QC fails and not
    ``force``. ``progress`` (optional) is called with each stage's name (:data:`STAGES`)
    as it starts."""
    from vasomics.chain.qc import QCFailed
    from vasomics.io.images import read_image
    from vasomics.provenance import file_sha256

    run_params = load_params(RunParams, params)
    outdir = Path(outdir)
    if progress is not None:
        progress("read")
    t0, c0 = time.perf_counter(), time.process_time()
    image = read_image(ct_path)
    read_s, read_cpu = time.perf_counter() - t0, time.process_time() - c0
    input_hash = file_sha256(ct_path)
    key = hashlib.sha256(input_hash.encode()).hexdigest()[:16]
    try:
        result = characterize(image, run_params, phase=phase, force=force,
                              cache_dir=outdir / ".cache", input_key=key, progress=progress)
    except VasomicsError as exc:
        if exc.path is None:  # name the scan the problem belongs to
            exc.path = str(ct_path)
        raise
    result.stage_seconds = {"read": round(read_s, 3), **result.stage_seconds}
    result.stage_cpu_seconds = {"read": round(read_cpu, 3), **result.stage_cpu_seconds}
    if progress is not None:
        progress("write")
    with staged_output_dir(outdir, supersedes=RUN_OUTPUTS) as stage:
        _write_outputs(stage, image, result, run_params, ct_path)
    if result.stopped:
        raise QCFailed(result.stopped.replace("QC fail", "scan failed quality control")
                       + f"; see {outdir / 'qc.json'} (use --force to continue)", ct_path)
    return result, outdir / "summary.html"


#: Every file ``run_chain`` may write; those a run does not write (a scan stopped by QC,
#: a tree not traced) are removed from OUTDIR, so no earlier run's output stays beside it.
RUN_OUTPUTS = ("qc.json", "params.yaml", "phase.json", "organs.nii.gz", "localization.json",
               "vessels.nii.gz", "portal.vtp", "hepatic.vtp", "artery.vtp", "artery.json",
               "features.csv", "summary.html", "provenance.json")


def _write_outputs(stage: Path, image: Image, result: ChainResult, params: RunParams,
                   ct_path) -> None:
    from vasomics.io.graphs import write_graph_vtp
    from vasomics.io.images import write_image

    t0, c0 = time.perf_counter(), time.process_time()
    (stage / "qc.json").write_text(json.dumps(result.qc.to_dict(), indent=1))
    (stage / "params.yaml").write_text(dump_params_yaml(params))
    if result.phase is not None:
        (stage / "phase.json").write_text(json.dumps(result.phase.to_dict(), indent=1))
    if result.localization is not None:
        # the measured organs: a chain stopped before its features still holds the extent
        organs = result.localization.measured
        labels = np.zeros(image.shape, np.uint8)
        left_out = ["portal_vein"] if "portal_vein" in result.distrusted else []
        for name, value in ORGAN_LABELS.items():
            if name not in left_out:
                labels[organs[name] & (labels == 0)] = value
        write_image(image.with_array(labels, modality="mask", metadata={}),
                    stage / "organs.nii.gz")
        summary = result.localization.summary()
        if left_out:  # the atlas mask the phase stage distrusted is no organ to show
            summary["not_in_organs_nii"] = left_out
        (stage / "localization.json").write_text(json.dumps(summary, indent=1))
    if result.vessels is not None:
        v = result.vessels
        labels = v.portal.astype(np.uint8) + 2 * (v.hepatic & ~v.portal).astype(np.uint8)
        if result.artery is not None:
            labels[result.artery.mask] = 3
        write_image(image.with_array(labels, modality="mask", metadata={}),
                    stage / "vessels.nii.gz")
    for name, graph in (("portal", result.portal), ("hepatic", result.hepatic),
                        ("artery", result.artery_graph)):
        if graph is not None:
            write_graph_vtp(graph, stage / f"{name}.vtp")
    if result.artery is not None:
        a = result.artery
        (stage / "artery.json").write_text(json.dumps(
            {"applicable": a.applicable, "status": a.status, "root_mm": a.root,
             "thresholds_hu": {"seed": a.thresholds_hu[0], "grow": a.thresholds_hu[1]},
             "reference_hu": a.reference_hu, "voxels": int(np.count_nonzero(a.mask))},
            indent=1))
    if result.features is not None:
        result.features.to_csv(stage / "features.csv")
    result.stage_seconds["write"] = round(time.perf_counter() - t0, 3)
    result.stage_cpu_seconds["write"] = round(time.process_time() - c0, 3)
    (stage / "summary.html").write_text(summary_html(image, result), encoding="utf-8")
    record = provenance_record(params, {"ct": ct_path}, result.stage_seconds)
    record["stage_cpu_seconds"] = result.stage_cpu_seconds
    record["load_average"] = [round(v, 2) for v in os.getloadavg()] \
        if hasattr(os, "getloadavg") else None
    record["phase_override"] = None if result.phase is None else [
        e for e in result.phase.evidence if e.startswith("phase set by the user")]
    (stage / "provenance.json").write_text(json.dumps(record, indent=1))


# ---------------------------------------------------------------------------- summary
_COLOURS = {
    "main_portal_vein": (230, 60, 60), "right_portal_vein": (250, 150, 40),
    "left_portal_vein": (60, 180, 75), "right_anterior_portal_vein": (255, 225, 25),
    "right_posterior_portal_vein": (245, 130, 180), "portal_S2": (70, 240, 240),
    "portal_S3": (0, 130, 200), "portal_S4": (145, 30, 180), "portal_S5": (210, 245, 60),
    "portal_S6": (240, 50, 230), "portal_S7": (170, 110, 40), "portal_S8": (255, 250, 200),
    "right_hepatic_vein": (0, 128, 128), "middle_hepatic_vein": (128, 128, 255),
    "left_hepatic_vein": (170, 255, 195), "hepatic_artery": (255, 0, 0),
    "right_hepatic_artery": (255, 120, 0), "left_hepatic_artery": (255, 0, 160),
}
KEY_FEATURES = ("VX.A.T.LIVER_VOL", "VX.A.T.SPLEEN_VOL", "VX.P.T.LIVER_SPLEEN_RATIO",
                "VX.A.V.TREE_LEN", "VX.A.V.TREE_VOL", "VX.P.V.DISTAL_RICHNESS",
                "VX.X.T.PORTAL_HEPATIC_VOL_RATIO", "VX.A.V.HILAR_STRAIGHTNESS",
                "VX.A.V.NAMED_DIAMETER", "VX.C.T.PV_AORTA_RATIO", "VX.M.V.MURRAY_DEV")


def _projection_png(image: Image, result: ChainResult) -> str:
    """Coronal maximum-intensity projection (posterior to anterior) with the named
    centerlines drawn in colour; PNG as base64."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    a = np.asarray(image.array, np.float32)
    mip = np.nan_to_num(a.max(axis=1), nan=-1000.0)  # (z, x); NaN voxels shown as air
    lo, hi = -150.0, 350.0
    g = (np.clip((mip - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)[::-1]  # superior up
    sz, sx = image.spacing[0], image.spacing[2]
    h, w = g.shape
    scale = 512.0 / max(h * sz, w * sx)
    size = (max(1, int(w * sx * scale)), max(1, int(h * sz * scale)))
    pil = PILImage.fromarray(g).convert("RGB").resize(size)
    draw = ImageDraw.Draw(pil)
    for graph in (result.portal, result.hepatic, result.artery_graph):
        if graph is None:
            continue
        idx = image.physical_to_index(graph.points)
        seg = graph.point_segment()
        for s in range(graph.n_segments):
            pts = idx[seg == s]
            colour = _COLOURS.get(str(graph.segment_label[s]), (200, 200, 200))
            xy = [(float(p[2] * sx * scale), float((h - 1 - p[0]) * sz * scale)) for p in pts]
            if len(xy) > 1:
                draw.line(xy, fill=colour, width=2)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def summary_html(image: Image, result: ChainResult) -> str:
    """A one-page HTML summary: projection with named centerlines, QC verdicts, phase
    probabilities, key features and time per stage."""
    e = html.escape
    rows = "".join(f"<tr class='{c.status}'><td>{e(c.name)}</td><td>{e(c.status)}</td>"
                   f"<td>{e(str(c.value))}</td><td>{e(c.reason)}</td></tr>"
                   for c in result.qc.checks)
    parts = [f"<h1>vasomics CT summary</h1><p>QC verdict: <b class='{result.qc.verdict}'>"
             f"{result.qc.verdict}</b>"
             + (f" &mdash; stopped: {e(result.stopped)}" if result.stopped else "") + "</p>"]
    if result.localization is not None:
        parts.append(f"<img alt='coronal MIP with named centerlines' "
                     f"src='data:image/png;base64,{_projection_png(image, result)}'>")
        legend = "".join(f"<span style='color:rgb{c}'>&#9632;</span> {e(n)} "
                         for n, c in _COLOURS.items())
        parts.append(f"<p class='legend'>{legend}</p>")
    if result.phase is not None:
        probs = ", ".join(f"{k} {v:.2f}" for k, v in result.phase.probabilities.items())
        parts.append(f"<h2>Phase: {e(result.phase.phase)}</h2><p>{e(probs)}</p><p>"
                     + e("; ".join(result.phase.evidence)) + "</p>")
    if result.artery is not None:
        parts.append(f"<p>Hepatic artery: {e(result.artery.status)}</p>")
    parts.append(f"<h2>Quality control</h2><table><tr><th>check</th><th>status</th>"
                 f"<th>value</th><th>reason</th></tr>{rows}</table>")
    if result.features is not None and len(result.features):
        f = result.features.frame
        f = f[f.feature_id.isin(KEY_FEATURES)]
        frows = "".join(f"<tr><td>{e(r.scope)}</td><td>{e(r.feature_id)}</td>"
                        f"<td>{r.value:.4g}</td><td>{e(r.unit)}</td></tr>"
                        for r in f.itertuples())
        parts.append(f"<h2>Key features</h2><table><tr><th>scope</th><th>feature</th>"
                     f"<th>value</th><th>unit</th></tr>{frows}</table>")
    times = ", ".join(f"{k} {v:.2f} s" for k, v in result.stage_seconds.items())
    parts.append(f"<h2>Time per stage</h2><p>{e(times)}</p>")
    style = ("body{font-family:sans-serif;max-width:900px;margin:auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
             ".fail{color:#b00}.warn{color:#b60}.pass{color:#070}.legend{font-size:80%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>vasomics summary</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


# ---------------------------------------------------------------------------- CLI
@click.command("run")
@click.argument("ct", type=click.Path(path_type=Path))
@click.option("-o", "--outdir", type=click.Path(path_type=Path), required=True,
              help="Output folder (created; files of the same name are replaced).")
@click.option("--phase", type=click.Choice(("auto",) + PHASES), default="auto",
              show_default=True, help="Contrast phase, or auto to recognize it.")
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=None,
              help="YAML parameter file (sections qc, localize, phase, vessels, graph).")
@click.option("--force", is_flag=True, help="Continue even when the scan fails QC.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_command(ct: Path, outdir: Path, phase: str, params_path: Path | None,
                force: bool, quiet: bool) -> None:
    """Characterize the liver vessels of the abdominal CT (file or DICOM folder): QC, phase,
    organs, portal and hepatic venous trees, names, features and a one-page summary."""
    from vasomics.cli import progress_bar

    with progress_bar(len(STAGES), "vasomics run", quiet,
                      item_show_func=lambda stage: stage) as bar:
        started: list[str] = []

        def progress(stage: str) -> None:  # a bar step per stage finished
            bar.update(1 if started else 0, current_item=stage)
            started.append(stage)

        result, summary = run_chain(ct, outdir, params=params_path, phase=phase,
                                    force=force, progress=progress)
        bar.update(1, current_item="done")
    click.echo(f"{result.qc.summary()}; phase {result.phase.phase if result.phase else '?'}")
    click.echo(str(summary))
