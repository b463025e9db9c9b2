"""Deep-learning 3D segmenters users already have: TotalSegmentator and nnU-Net v2.

vasomics does not ship their weights and never downloads anything. A backend is used only
when its package *and* local weights are present; otherwise :class:`DependencyError` says in
one line how to get them. There is never a silent fallback to another method.

Where weights are looked for
----------------------------
* TotalSegmentator: ``$TOTALSEG_HOME_DIR`` (TotalSegmentator's own variable), default
  ``~/.totalsegmentator``; its weights live under ``<home>/nnunet/results``. Obtain with
  ``pip install TotalSegmentator`` then ``totalseg_download_weights -t total``.
* nnU-Net v2: ``$nnUNet_results`` (nnU-Net's own variable) holding
  ``Dataset<ID>_<name>/<trainer>__<plans>__<config>/``; the dataset's ``dataset.json``
  ``labels`` give the class names, mapped like TotalSegmentator's where they match.

Label mapping
-------------
Outputs are turned into ``{vasomics name: boolean mask}`` with :data:`TOTALSEG_TO_VASOMICS`
(TotalSegmentator class name -> vasomics vessel/organ name; vasomics names follow
:mod:`vasomics.chain.naming`). Multi-label maps use the class ids of the TotalSegmentator
task (:data:`TOTALSEG_TOTAL_IDS`, task ``total`` of TotalSegmentator v2).
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from vasomics.errors import DependencyError, InputError
from vasomics.image import Image

#: TotalSegmentator class name -> vasomics name (vessels and the organs vasomics uses as regions).
TOTALSEG_TO_VASOMICS: dict[str, str] = {
    "aorta": "aorta",
    "inferior_vena_cava": "ivc",
    "superior_vena_cava": "svc",
    "portal_vein_and_splenic_vein": "portal_splenic_vein",
    "pulmonary_artery": "pulmonary_artery",
    "pulmonary_vein": "pulmonary_vein",
    "brachiocephalic_trunk": "brachiocephalic_trunk",
    "brachiocephalic_vein_left": "brachiocephalic_vein_left",
    "brachiocephalic_vein_right": "brachiocephalic_vein_right",
    "subclavian_artery_left": "subclavian_artery_left",
    "subclavian_artery_right": "subclavian_artery_right",
    "common_carotid_artery_left": "common_carotid_artery_left",
    "common_carotid_artery_right": "common_carotid_artery_right",
    "iliac_artery_left": "common_iliac_artery_left",
    "iliac_artery_right": "common_iliac_artery_right",
    "iliac_vena_left": "common_iliac_vein_left",
    "iliac_vena_right": "common_iliac_vein_right",
    "liver_vessels": "liver_vessels",
    "lung_vessels": "lung_vessels",
    "coronary_arteries": "coronary_arteries",
    "heart": "heart",
    "liver": "liver",
    "spleen": "spleen",
    "kidney_left": "kidney_left",
    "kidney_right": "kidney_right",
    "pancreas": "pancreas",
}

#: Class ids of TotalSegmentator v2 task ``total`` for the classes of the mapping table.
TOTALSEG_TOTAL_IDS: dict[int, str] = {
    1: "spleen", 2: "kidney_right", 3: "kidney_left", 5: "liver", 7: "pancreas", 51: "heart",
    52: "aorta", 53: "pulmonary_vein", 54: "brachiocephalic_trunk",
    55: "subclavian_artery_right", 56: "subclavian_artery_left",
    57: "common_carotid_artery_right", 58: "common_carotid_artery_left",
    59: "brachiocephalic_vein_left", 60: "brachiocephalic_vein_right",
    62: "superior_vena_cava", 63: "inferior_vena_cava", 64: "portal_vein_and_splenic_vein",
    65: "iliac_artery_left", 66: "iliac_artery_right", 67: "iliac_vena_left",
    68: "iliac_vena_right",
}


def map_labels(labels: np.ndarray, id_to_name: dict[int, str] | None = None
               ) -> dict[str, np.ndarray]:
    """Multi-label map -> ``{vasomics name: mask}`` for the classes present and mapped."""
    id_to_name = TOTALSEG_TOTAL_IDS if id_to_name is None else id_to_name
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.mod(labels, 1) == 0):
            raise InputError("label map holds non-integer values")
        labels = labels.astype(np.int64)
    present = set(np.unique(labels).tolist())
    return {TOTALSEG_TO_VASOMICS[name]: labels == i for i, name in id_to_name.items()
            if i in present and name in TOTALSEG_TO_VASOMICS}


def map_binary_masks(folder: str | Path) -> dict[str, np.ndarray]:
    """TotalSegmentator's one-file-per-class output folder -> ``{vasomics name: mask}``
    (classes not in the mapping table are skipped; empty masks are kept as empty)."""
    from vasomics.io.images import read_image

    folder = Path(folder)
    out = {}
    for path in sorted(folder.glob("*.nii.gz")):
        name = path.name[: -len(".nii.gz")]
        if name in TOTALSEG_TO_VASOMICS:
            out[TOTALSEG_TO_VASOMICS[name]] = read_image(path).array > 0
    if not out:
        raise InputError("no TotalSegmentator class masks found", folder)
    return out


# ----------------------------------------------------------------------------- detection

def totalsegmentator_home() -> Path:
    """TotalSegmentator's weight folder (``$TOTALSEG_HOME_DIR`` or ``~/.totalsegmentator``)."""
    return Path(os.environ.get("TOTALSEG_HOME_DIR", Path.home() / ".totalsegmentator"))


def require_totalsegmentator() -> Path:
    """Check package and weights; return the weight folder or raise DependencyError."""
    if importlib.util.find_spec("totalsegmentator") is None:
        raise DependencyError("TotalSegmentator is not installed: pip install TotalSegmentator "
                              "(needs PyTorch), then totalseg_download_weights -t total")
    results = totalsegmentator_home() / "nnunet" / "results"
    if not results.is_dir() or not any(results.iterdir()):
        raise DependencyError("TotalSegmentator weights not found (set TOTALSEG_HOME_DIR or run "
                              "totalseg_download_weights -t total)", results)
    return results


def require_nnunet(dataset: str) -> Path:
    """Check nnU-Net v2 and the trained model folder of ``dataset`` (e.g. ``Dataset123_X``);
    return that folder or raise DependencyError."""
    if importlib.util.find_spec("nnunetv2") is None:
        raise DependencyError("nnU-Net v2 is not installed: pip install nnunetv2 (needs PyTorch)")
    root = os.environ.get("nnUNet_results")
    if not root:
        raise DependencyError("nnU-Net results folder unknown: set nnUNet_results to the "
                              "folder holding your trained Dataset<ID>_<name> models")
    hits = sorted(Path(root).glob(f"{dataset}*"))
    if not hits:
        raise DependencyError(f"no trained nnU-Net model for {dataset!r} under nnUNet_results",
                              root)
    return hits[0]


# ----------------------------------------------------------------------------- running

def run_totalsegmentator(image: Image, *, task: str = "total", fast: bool = False
                         ) -> dict[str, Image]:
    """Run TotalSegmentator on a CT/MR volume; returns ``{vasomics name: mask Image}``."""
    require_totalsegmentator()
    from totalsegmentator.python_api import totalsegmentator

    from vasomics.io.images import write_image

    with tempfile.TemporaryDirectory(prefix="vasomics-ts-") as tmp:
        src = Path(tmp) / "image.nii.gz"
        write_image(image, src)
        out = Path(tmp) / "seg"
        totalsegmentator(str(src), str(out), task=task, fast=fast, quiet=True)
        masks = map_binary_masks(out)
    return {name: image.with_array(m, modality="mask") for name, m in masks.items()}


def run_nnunet(image: Image, dataset: str, *, configuration: str = "3d_fullres",
               folds: tuple[int, ...] = (0,)) -> dict[str, Image]:
    """Run a trained nnU-Net v2 model; classes named in its ``dataset.json`` are mapped with
    :data:`TOTALSEG_TO_VASOMICS` (names not in the table are kept as they are)."""
    model_dir = require_nnunet(dataset)
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from vasomics.io.images import read_image, write_image

    trained = sorted(model_dir.glob(f"*__{configuration}"))
    if not trained:
        raise DependencyError(f"no {configuration} configuration trained", model_dir)
    labels = json.loads((model_dir / "dataset.json").read_text())["labels"]
    predictor = nnUNetPredictor(device=_torch_device())
    predictor.initialize_from_trained_model_folder(str(trained[0]), use_folds=folds)
    with tempfile.TemporaryDirectory(prefix="vasomics-nnunet-") as tmp:
        src = Path(tmp) / "in" / "case_0000.nii.gz"
        src.parent.mkdir()
        write_image(image, src)
        predictor.predict_from_files(str(src.parent), str(Path(tmp) / "out"))
        seg = read_image(Path(tmp) / "out" / "case.nii.gz").array
    out = {}
    for name, value in labels.items():
        if name != "background":
            out[TOTALSEG_TO_VASOMICS.get(name, name)] = image.with_array(seg == int(value),
                                                                          modality="mask")
    return out


def _torch_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
