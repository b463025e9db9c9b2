"""Quality control of an abdominal CT before (and after) it is characterized.

Two groups of checks, each giving ``pass``, ``warn`` or ``fail`` with a one-line reason:

* :func:`check_image` (header and intensity checks, before anything else): dimensionality,
  modality, Hounsfield plausibility, localizer/scout series, slice count, slice thickness and
  in-plane spacing, mixed series (from the DICOM reader's metadata; uneven slice spacing is
  already a one-line error of the reader),
  oblique orientation, noise SD in homogeneous soft tissue, metal/streak artefacts and a
  truncated field of view.
* :func:`check_coverage` (after localization): coverage of the target organ (liver present
  with a plausible volume, not cut by the first or last slice).
* :func:`check_vessel_contrast` (after vessel segmentation): contrast-to-noise of the
  segmented liver vessels against the liver parenchyma. It is measured on the vessels found,
  not on the localized portal vein: an atlas portal vein a few millimetres off lies in the
  parenchyma and would read as no contrast.

Thresholds live in :class:`QCParams` (the ``qc`` section of a parameter file). A report fails
when any check fails; ``vasomics run`` stops there unless ``--force``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from pydantic import Field
from scipy import ndimage

from vasomics.chain._grid import bounding_box
from vasomics.errors import VasomicsError
from vasomics.image import Image
from vasomics.params import StageParams

STATUSES = ("pass", "warn", "fail")


class QCFailed(VasomicsError):
    """The scan failed quality control (the message lists the failed checks)."""


class QCParams(StageParams):
    """Quality-control thresholds (HU, mm, degrees, fractions)."""

    min_slices: int = Field(12, description="Fewer slices than this: a localizer/scout or a "
                                            "partial series (fail).")
    slice_thickness_warn_mm: float = Field(3.0, description="Slice spacing above this warns.")
    slice_thickness_fail_mm: float = Field(7.5, description="Slice spacing above this fails.")
    inplane_spacing_warn_mm: float = Field(1.0, description="In-plane pixel size above this "
                                                            "warns (small vessels are lost).")
    inplane_spacing_fail_mm: float = Field(5.0, description="In-plane pixel size above this "
                                                            "fails.")
    oblique_warn_deg: float = Field(5.0, description="Axes tilted more than this from the "
                                                     "patient axes warn (oblique acquisition).")
    noise_warn_hu: float = Field(30.0, description="Noise SD in soft tissue above this warns.")
    noise_fail_hu: float = Field(90.0, description="Noise SD above this fails.")
    metal_hu: float = Field(3070.0, description="Voxels above this count as metal (dense "
                                                "cortical bone stays below).")
    metal_warn_fraction: float = Field(1e-4, description="Fraction of body voxels that are "
                                                         "metal above which streaks are likely.")
    truncation_warn_fraction: float = Field(0.15, description="Fraction of the in-plane border "
                                                              "covered by body tissue above "
                                                              "which the FOV is truncated.")
    hu_max_plausible: float = Field(4000.0, description="Maxima above this (outside metal) "
                                                        "warn: not calibrated HU?")
    min_liver_agreement: float = Field(0.4, description="The localized liver's first "
                                                        "refinement pass must keep at least "
                                                        "this Dice with the registered atlas "
                                                        "liver; below it the atlas found no "
                                                        "liver-like organ where it put the "
                                                        "liver (measured: 0.95 same subject, "
                                                        "0.87 IRCADb, 0.21 a thoracic CT "
                                                        "angiogram).")
    liver_min_hu: float = Field(0.0, description="A localized liver whose median reads "
                                                 "below this (HU) lies on fat or bowel, not "
                                                 "parenchyma (fail): a liver reads 40-130 HU "
                                                 "in every phase, down to about 0 in extreme "
                                                 "steatosis.")
    min_liver_volume_ml: float = Field(300.0, description="A localized liver smaller than this "
                                                          "means the scan misses the liver "
                                                          "(fail).")
    liver_cut_warn_fraction: float = Field(0.3, description="Liver cross-section on the first "
                                                            "or last slice, relative to its "
                                                            "largest, above which it is cut.")
    cnr_warn: float = Field(3.0, description="Segmented liver vessels' contrast-to-noise "
                                             "against the parenchyma below this warns "
                                             "(contrast-enhanced phases only).")


@dataclass(frozen=True)
class QCCheck:
    """One check: ``name``, ``status`` (pass/warn/fail), measured ``value`` and ``reason``."""

    name: str
    status: str
    value: float | str | None
    reason: str


@dataclass
class QCReport:
    """The checks run on one scan, in order."""

    checks: list[QCCheck] = field(default_factory=list)

    def add(self, name: str, status: str, value, reason: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"bad QC status {status}")
        if isinstance(value, np.generic):
            value = value.item()
        self.checks.append(QCCheck(name, status, value, reason))

    def extend(self, other: QCReport) -> QCReport:
        self.checks.extend(other.checks)
        return self

    @property
    def verdict(self) -> str:
        """``fail`` if any check fails, else ``warn`` if any warns, else ``pass``."""
        statuses = {c.status for c in self.checks}
        return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"

    def failures(self) -> list[QCCheck]:
        return [c for c in self.checks if c.status == "fail"]

    def summary(self) -> str:
        """One line: the verdict and the reasons of non-passing checks."""
        bad = [c for c in self.checks if c.status != "pass"]
        reasons = "; ".join(f"{c.name}: {c.reason}" for c in bad)
        return f"QC {self.verdict}" + (f" ({reasons})" if reasons else "")

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "checks": [asdict(c) for c in self.checks]}

    def raise_if_failed(self, path=None) -> None:
        """Raise :class:`QCFailed` naming every failed check."""
        fails = self.failures()
        if fails:
            raise QCFailed("scan failed quality control: " + "; ".join(
                f"{c.name}: {c.reason}" for c in fails) + " (use --force to continue)", path)


def check_image(image: Image, params: QCParams | None = None) -> QCReport:
    """Header and intensity checks of a CT :class:`~vasomics.image.Image` (array in HU,
    NumPy order ``(z, y, x)``, spacing in mm). Never raises for a bad scan: every problem
    becomes a ``fail`` or ``warn`` check."""
    p = params or QCParams()
    r = QCReport()
    meta = image.metadata or {}
    if image.ndim != 3 or image.n_channels != 1:
        r.add("dimensions", "fail", str(image.array.shape),
              f"a 3D single-channel volume is required, got array shape {image.array.shape}")
        return r
    r.add("dimensions", "pass", str(image.shape), "3D volume")
    modality = str(image.modality or meta.get("modality") or "").upper()
    if modality and modality != "CT":
        r.add("modality", "fail", modality, f"modality is {modality}, not CT")
    else:
        r.add("modality", "pass", modality or "unknown", "CT or not stated")
    image_type = str(meta.get("image_type", "")).upper()
    if "LOCALIZER" in image_type or "SCOUT" in image_type or "TOPOGRAM" in image_type:
        r.add("localizer", "fail", image_type, "series is a localizer/scout, not an axial scan")
    _series_checks(r, meta, p)
    nz = image.shape[0]
    status = "fail" if nz < p.min_slices else "pass"
    r.add("slices", status, nz, f"{nz} slices" + (" (a localizer or partial series?)"
                                                  if status == "fail" else ""))
    _spacing_checks(r, image, p)
    _intensity_checks(r, image, p)
    return r


def _series_checks(r: QCReport, meta: dict, p: QCParams) -> None:
    n_series = meta.get("dicom_series_in_folder")
    if n_series is not None and int(n_series) > 1:
        r.add("series", "warn", int(n_series), f"folder holds {int(n_series)} series; the one "
                                                "read was chosen by the reader")


def _spacing_checks(r: QCReport, image: Image, p: QCParams) -> None:
    sz, sy, sx = image.spacing
    status = ("fail" if sz > p.slice_thickness_fail_mm else
              "warn" if sz > p.slice_thickness_warn_mm else "pass")
    r.add("slice_spacing", status, sz, f"{sz:.3g} mm between slices")
    inplane = max(sy, sx)
    status = ("fail" if inplane > p.inplane_spacing_fail_mm else
              "warn" if inplane > p.inplane_spacing_warn_mm else "pass")
    r.add("inplane_spacing", status, inplane, f"{inplane:.3g} mm pixels")
    d = np.abs(np.asarray(image.direction))
    tilt = float(np.degrees(np.arccos(np.clip(d.max(axis=0).min(), -1, 1))))
    r.add("orientation", "warn" if tilt > p.oblique_warn_deg else "pass", round(tilt, 2),
          f"axes tilted {tilt:.1f} degrees from the patient axes")


def estimate_noise_sd(array: np.ndarray, lo: float = -80.0, hi: float = 180.0) -> float:
    """Noise SD (HU) from neighbouring-voxel differences along x within soft tissue
    (both voxels in ``[lo, hi]`` HU): ``1.4826 × median|Δ| / √2``, robust to edges. The value
    is that of the image's own (possibly correlated) noise at the voxel scale."""
    a = np.asarray(array)
    step = max(1, a.shape[0] // 40)
    sub = a[::step].astype(np.float32)
    d = np.diff(sub, axis=-1)
    ok = (sub[..., 1:] >= lo) & (sub[..., 1:] <= hi) & (sub[..., :-1] >= lo) & (sub[..., :-1]
                                                                                <= hi)
    if np.count_nonzero(ok) < 100:
        return float("nan")
    return float(1.4826 * np.median(np.abs(d[ok])) / np.sqrt(2))


def _intensity_checks(r: QCReport, image: Image, p: QCParams) -> None:
    a = image.array
    step = max(1, int(round((a.size / 4e6) ** (1 / 3))))
    sample = np.asarray(a[::step, ::step, ::step], np.float32)
    n_bad = a.size - int(np.count_nonzero(np.isfinite(a))) if a.dtype.kind == "f" else 0
    if n_bad:  # every voxel is checked: a sample can miss a bad slice
        sample = sample[np.isfinite(sample)]
        r.add("finite", "fail", n_bad, f"image holds {n_bad} NaN or infinite voxels "
              f"({100 * n_bad / a.size:.2g} % of the volume); with --force they are read as "
              f"its lowest value (air)")
    if sample.size == 0 or float(sample.max() - sample.min()) == 0:
        r.add("hounsfield", "fail", None, "image is constant")
        return
    q = np.percentile(sample, [0.5, 50, 99.9])
    body = sample[(sample > -400) & (sample < 1500)]
    body_median = float(np.median(body)) if body.size else float("nan")
    is_hu = q[0] < -300 and body.size > 0.02 * sample.size and -200 <= body_median <= 250
    if not is_hu:
        r.add("hounsfield", "fail", f"{q[0]:.0f}..{q[2]:.0f}",
              f"intensities ({q[0]:.0f} to {q[2]:.0f}, soft-tissue median {body_median:.0f}) "
              f"are not Hounsfield units of a CT with air or fat")
        return
    r.add("hounsfield", "pass", f"{q[0]:.0f}..{q[2]:.0f}", "air/fat and soft tissue present")
    padding = float(np.mean(sample < -1100))
    if padding > 0.5:
        r.add("padding", "warn", round(padding, 3), f"{padding:.0%} of voxels below -1100 HU "
                                                    "(padding outside the reconstruction)")
    noise = estimate_noise_sd(a)
    status = ("fail" if not np.isfinite(noise) or noise > p.noise_fail_hu else
              "warn" if noise > p.noise_warn_hu else "pass")
    r.add("noise", status, None if not np.isfinite(noise) else round(noise, 2),
          "no homogeneous soft tissue found" if not np.isfinite(noise)
          else f"noise SD {noise:.1f} HU in soft tissue")
    body_mask = sample > -400
    metal = float(np.mean(sample[body_mask] > p.metal_hu)) if body_mask.any() else 0.0
    r.add("metal", "warn" if metal > p.metal_warn_fraction else "pass", round(metal, 6),
          f"{metal:.2%} of body voxels above {p.metal_hu:.0f} HU"
          + (" (metal: streak artefacts likely)" if metal > p.metal_warn_fraction else ""))
    if q[2] > p.hu_max_plausible and metal <= p.metal_warn_fraction:
        r.add("hu_range", "warn", float(q[2]), f"99.9th percentile {q[2]:.0f} HU is implausible")
    border = np.concatenate([a[:, :2, :].ravel(), a[:, -2:, :].ravel(), a[:, :, :2].ravel(),
                             a[:, :, -2:].ravel()])
    frac = float(np.mean(border > -400))
    r.add("field_of_view", "warn" if frac > p.truncation_warn_fraction else "pass",
          round(frac, 3), f"{frac:.0%} of the in-plane border is body tissue"
          + (" (truncated field of view)" if frac > p.truncation_warn_fraction else ""))


def check_coverage(image: Image, organs: dict[str, np.ndarray], noise_sd: float | None,
                   phase: str | None, params: QCParams | None = None,
                   liver_agreement: float | None = None) -> QCReport:
    """Checks that need the localized organs (boolean masks on the image grid): liver
    coverage and truncation. ``liver_agreement``: Dice of the refined liver with the
    registered atlas liver (see ``min_liver_agreement``), when known."""
    p = params or QCParams()
    r = QCReport()
    liver = organs.get("liver")
    if liver_agreement is not None and liver_agreement < p.min_liver_agreement:
        r.add("liver_coverage", "fail", round(float(liver_agreement), 3),
              f"no liver found where the atlas places it (refinement kept Dice "
              f"{liver_agreement:.2f} of the atlas liver; does the scan cover the liver?)")
        return r
    vol_ml = 0.0 if liver is None else float(np.count_nonzero(liver)) * image.voxel_volume / 1e3
    if vol_ml < p.min_liver_volume_ml:
        r.add("liver_coverage", "fail", round(vol_ml, 1),
              f"liver not found or only {vol_ml:.0f} ml in the scan (does it cover the liver?)")
        return r
    liver_hu = float(np.median(np.asarray(image.array)[liver]))
    if not liver_hu >= p.liver_min_hu:
        r.add("liver_coverage", "fail", round(liver_hu, 1),
              f"the localized liver reads {liver_hu:.0f} HU (below {p.liver_min_hu:g} HU): "
              f"fat or bowel, not liver parenchyma (atlas registration failed?)")
        return r
    area = liver.sum(axis=(1, 2)).astype(float)
    cut = max(area[0], area[-1]) / max(area.max(), 1.0)
    r.add("liver_coverage", "warn" if cut > p.liver_cut_warn_fraction else "pass",
          round(vol_ml, 1), f"liver {vol_ml:.0f} ml" + (
              f", cut by the first/last slice ({cut:.0%} of its largest cross-section)"
              if cut > p.liver_cut_warn_fraction else ""))
    return r


def check_vessel_contrast(image: Image, vessels: np.ndarray, liver: np.ndarray,
                          noise_sd: float | None, phase: str | None,
                          params: QCParams | None = None) -> QCReport:
    """Contrast-to-noise of the segmented liver vessels (boolean mask on the image grid)
    against the liver parenchyma, in enhanced phases: (median HU of the lumen core − median
    HU of the parenchyma) / ``noise_sd`` (HU). The lumen core is the vessel voxels whose six
    face neighbours are vessel too (free of partial volume); the parenchyma is the liver
    farther than two voxels from any vessel. No check when the scan is native, when nothing
    was segmented (the vessel stage reports why) or when no vessel is three voxels thick
    (no core: its voxels are all partial volume)."""
    p = params or QCParams()
    r = QCReport()
    if phase in (None, "native") or not noise_sd or not vessels.any() or not liver.any():
        return r
    box = bounding_box(vessels | liver)
    ves, liv, hu = vessels[box], liver[box], image.array[box]
    core = ndimage.binary_erosion(ves)
    if not core.any():
        return r
    parenchyma = liv & ~ndimage.binary_dilation(ves, iterations=2)
    if not parenchyma.any():
        return r
    cnr = float((np.median(hu[core]) - np.median(hu[parenchyma])) / noise_sd)
    r.add("vessel_cnr", "warn" if cnr < p.cnr_warn else "pass", round(cnr, 2),
          f"segmented liver vessels' contrast-to-noise {cnr:.1f} against the parenchyma")
    return r
