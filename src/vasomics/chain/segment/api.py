"""The :func:`segment` entry point: image -> vessel mask, by preset and method.

Methods
-------
* ``frangi``, ``sato``, ``jerman``: classical multi-scale Hessian filters
  (:mod:`.vesselness`) followed by :mod:`.binarize`.
* ``line``: the multi-scale line detector (:mod:`.linedetector`, 2D; Nguyen et al. 2013)
  followed by :mod:`.binarize` (``method_binarize["line"]`` when the preset has one).
* ``learned``: the shipped 2D U-Nets (:mod:`.learned`; fundus and OCTA).
* ``totalsegmentator``, ``nnunet``: the user's installed deep-learning 3D segmenters
  (:mod:`.backends`); their vessel classes are united into the vessel mask and every mapped
  class is returned by name.
* ``aorta``: the classical CT-angiography aorta tracker (:mod:`.aorta`); the mask is the
  aorta only (lumen and false lumen), returned as the structure ``"aorta"`` too.

2D input conversions (documented, never silent about the kind of input): an RGB(A) image is
converted to its green channel for fundus and to BT.601 luminance otherwise; a 3D volume
handed to a 2D-only method (``learned``) is an error, as is an RGB volume.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from vasomics.chain.segment.aorta import AortaParams
from vasomics.chain.segment.binarize import BinarizeParams, binarize
from vasomics.chain.segment.linedetector import LineDetectorParams
from vasomics.chain.segment.vesselness import VesselnessParams, vesselness
from vasomics.errors import InputError, ParameterError
from vasomics.image import Image
from vasomics.params import StageParams, load_params

log = logging.getLogger(__name__)

PRESET_DIR = Path(__file__).with_name("presets")
SegMethod = Literal["frangi", "sato", "jerman", "line", "learned", "totalsegmentator", "nnunet",
                    "aorta"]
#: Vessel classes united into the vessel mask for deep-learning backends.
DL_VESSEL_NAMES = ("aorta", "ivc", "svc", "portal_splenic_vein", "pulmonary_artery",
                   "pulmonary_vein", "brachiocephalic_trunk", "common_iliac_artery_left",
                   "common_iliac_artery_right", "common_iliac_vein_left",
                   "common_iliac_vein_right", "liver_vessels", "lung_vessels",
                   "coronary_arteries")


class SegmentParams(StageParams):
    """A segmentation preset (one YAML file in ``presets/``)."""

    modality: str = "CT"  # free text recorded with the output
    method: SegMethod = "frangi"  # default method of the preset
    vesselness: VesselnessParams = Field(default_factory=VesselnessParams)
    binarize: BinarizeParams = Field(default_factory=BinarizeParams)
    aorta: AortaParams = Field(default_factory=AortaParams)  # method "aorta"
    line: LineDetectorParams = Field(default_factory=LineDetectorParams)  # method "line"
    method_binarize: dict[str, BinarizeParams] = Field(default_factory=dict)  # per method,
    # replaces ``binarize`` for that method (e.g. a z-score threshold for "line")
    clahe: bool = False  # 2D: contrast-limited adaptive histogram equalization first
    fov: Literal["none", "fundus"] = "none"  # 2D field of view: none or derived (fundus)
    fov_erode_px: int = 0  # extra FOV erosion (pixels) for binarization only
    fov_reference_px: float | None = None  # method "line" with a fundus FOV: pixel lengths
    # are scaled by (camera aperture diameter, fov.fundus_aperture / this), so one preset
    # suits cameras of other resolution
    learned_model: str | None = None  # shipped model for method "learned"
    learned_thin_recovery: bool = False  # method "learned": add the centre lines of faint
    # thin vessels (total length then matches manual tracing; see the model card's figures)
    nnunet_dataset: str | None = None  # Dataset<ID>_<name> for method "nnunet"


def presets() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name_or_path: str | Path) -> SegmentParams:
    """Load a shipped preset by name, or a YAML file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ParameterError(f"unknown preset {name_or_path!r}; known: "
                                 f"{', '.join(presets())}")
    return load_params(SegmentParams, path)


@dataclass
class Segmentation:
    """Result of :func:`segment`: the vessel mask, the score map when the method has one
    (vesselness or probability, float32) and named structures for DL backends."""

    mask: Image
    score: Image | None = None
    structures: dict[str, Image] = field(default_factory=dict)
    params: SegmentParams | None = None


def _scalar_2d(image: Image, params: SegmentParams) -> np.ndarray:
    from vasomics.chain.segment.fov import to_grey

    channel = "green" if params.fov == "fundus" else "luminance"
    return to_grey(image.array, channel=channel)


def segment(image: Image, preset: str | Path | SegmentParams = "cta", *,
            method: SegMethod | None = None, region: np.ndarray | None = None,
            seeds=None, progress: Callable[[float], None] | None = None) -> Segmentation:
    """Segment vessels in ``image`` (2D or 3D :class:`~vasomics.image.Image`).

    Parameters
    ----------
    preset:
        Preset name (see :func:`presets`), YAML path or :class:`SegmentParams`.
    method:
        Overrides the preset's method.
    region:
        Boolean mask (same spatial shape) restricting where vessels may be found (FOV, organ).
    seeds:
        Voxel indices (NumPy order) for ``binarize.keep == "seeds"``.
    progress:
        Called with the fraction done (0..1).
    """
    p = preset if isinstance(preset, SegmentParams) else load_preset(preset)
    method = method or p.method
    spatial = image.array.shape[: len(image.spacing)]
    if region is not None:
        region = np.asarray(region, bool)
        if region.shape != spatial:
            raise InputError(f"region mask shape {region.shape} does not match the image "
                             f"{spatial}")
    if method in ("totalsegmentator", "nnunet"):
        return _segment_dl(image, p, method, region)
    if method == "aorta":
        return _segment_aorta(image, p, region, progress)
    is_colour = image.array.ndim == len(image.spacing) + 1
    if is_colour and len(image.spacing) == 3:
        raise InputError(f"colour volumes are not supported (shape {image.array.shape})")
    fov = region
    if len(image.spacing) == 2 and p.fov == "fundus":
        from vasomics.chain.segment.fov import fundus_fov

        derived = fundus_fov(image.array)
        fov = derived if fov is None else fov & derived
    if method in ("learned", "line"):
        if len(image.spacing) != 2:
            raise InputError(f"the {method} segmenter is 2D (fundus, OCTA); use a 3D method "
                             "(frangi, sato, jerman, totalsegmentator, nnunet) for volumes")
    if method == "learned":
        from vasomics.chain.segment.learned import segment_learned

        mask, prob = segment_learned(image.array, p.learned_model or "chase", fov,
                                     thin_recovery=p.learned_thin_recovery)
        if progress:
            progress(1.0)
        return Segmentation(image.with_array(mask, modality="mask"),
                            image.with_array(prob, modality="probability"), params=p)
    if len(image.spacing) == 2:
        arr = _scalar_2d(image, p)
        if p.clahe:
            from skimage.exposure import equalize_adapthist

            lo, hi = float(arr.min()), float(arr.max())
            arr = equalize_adapthist((arr - lo) / (hi - lo) if hi > lo else arr * 0,
                                     clip_limit=0.01).astype(np.float32)
    else:
        arr = image.array
    spacing = image.spacing
    if method == "line":
        from vasomics.chain.segment.linedetector import line_detector

        if p.fov_reference_px and fov is not None and p.fov == "fundus":
            from vasomics.chain.segment.fov import image_scale

            factor = image_scale(image.array, p.fov_reference_px, fov)
            spacing = tuple(s * factor for s in image.spacing)
        lp = p.line if p.line.bright is not None else \
            p.line.model_copy(update={"bright": p.vesselness.bright})
        score = line_detector(arr, spacing, lp, region=fov, progress=progress)
    else:
        vp = p.vesselness.model_copy(update={"method": method})
        score = vesselness(arr, image.spacing, vp, progress=progress)
    bregion = fov
    if fov is not None and p.fov_erode_px > 0:
        from scipy import ndimage as ndi

        bregion = ndi.binary_erosion(fov, iterations=p.fov_erode_px)
    mask = binarize(score, p.method_binarize.get(method, p.binarize), spacing=spacing,
                    image=arr, region=bregion, seeds=seeds)
    spatial_image = image if not is_colour else image.with_array(arr)
    return Segmentation(spatial_image.with_array(mask, modality="mask"),
                        spatial_image.with_array(score, modality="vesselness"), params=p)


def _segment_aorta(image: Image, p: SegmentParams, region, progress) -> Segmentation:
    from vasomics.chain.segment.aorta import segment_aorta

    if len(image.spacing) != 3 or image.array.ndim != 3:
        raise InputError("the aorta method segments 3D CT volumes, got a 2D or colour image")
    mask = segment_aorta(image, p.aorta).mask.array
    if region is not None:
        mask = mask & region
    if progress:
        progress(1.0)
    out = image.with_array(mask, modality="mask")
    return Segmentation(out, None, {"aorta": out}, p)


def _segment_dl(image: Image, p: SegmentParams, method: str, region) -> Segmentation:
    from vasomics.chain.segment import backends

    if len(image.spacing) != 3:
        raise InputError(f"{method} segments 3D CT/MR volumes, got a 2D image")
    if method == "totalsegmentator":
        structures = backends.run_totalsegmentator(image)
    else:
        if not p.nnunet_dataset:
            raise ParameterError("method nnunet needs nnunet_dataset in the preset "
                                 "(Dataset<ID>_<name> under nnUNet_results)")
        structures = backends.run_nnunet(image, p.nnunet_dataset)
    mask = np.zeros(image.array.shape, bool)
    for name in DL_VESSEL_NAMES:
        if name in structures:
            mask |= structures[name].array.astype(bool)
    if region is not None:
        mask &= region
    return Segmentation(image.with_array(mask, modality="mask"), None, structures, p)
