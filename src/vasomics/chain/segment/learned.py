"""Learned 2D vessel segmenter for fundus photographs and OCTA en-face images.

A compact U-Net (4 resolution levels, ``base`` channels doubling per level, batch norm,
ReLU; about 0.12 M parameters for ``base=8``) trained on CPU from random patches with flips,
90-degree rotations and intensity jitter, with binary cross-entropy + soft Dice loss, plus
optionally ``cldice_weight`` x soft clDice (Shit et al., CVPR 2021: a soft skeleton from
iterated min/max pooling rewards covering the centre line of every vessel, thin ones
included, as much as thick ones). Options: ``thin_weight`` raises the cross-entropy weight
of manual pixels of thin vessels (:func:`thin_vessel_mask`), ``init`` fine-tunes given
weights.

``segment_learned(..., thin_recovery=True)`` adds the 1-pixel centre lines of faint vessels
continuing the mask (:func:`recover_thin`, low threshold ``thin_low`` from the card, chosen on
the training split): the network misses most 1-3 pixel wide fundus vessels (probability about
0.01 on them), which shortens the total centerline length by about 17 % on CHASE_DB1.

Training is reproducible: a fixed seed drives the split, the patches, the augmentation and
the initialisation, and ``torch.use_deterministic_algorithms`` is on while it runs, so the
same command with the same ``threads``, torch version and CPU gives bit-identical weights
(``torch.save`` names the archive after the file's stem: write to the same file name).

Input preparation (the same for training and inference): grey image (RGB -> green channel,
see :func:`vasomics.chain.segment.fov.to_grey`) scaled to [0, 1] by its dtype range
(8-bit: /255, 16-bit: /65535, float: min-max), CLAHE (``skimage.exposure.equalize_adapthist``,
clip 0.01), then standardized by the mean and standard deviation inside the field of view.

Weights live in ``weights/<name>.pt`` with ``weights/<name>.json`` beside them (the command,
data, seed, iterations, decision threshold and validation figures). PyTorch is an optional
extra (``pip install 'vasomics[dl]'``, torch==2.13.0 CPU wheel); without it, or without the
weight file, a :class:`~vasomics.errors.DependencyError` says how to get them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from vasomics.errors import DependencyError, InputError, ParameterError
from vasomics.params import StageParams

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).with_name("weights")
#: Learned models shipped with vasomics: name -> description.
MODELS = {"chase": "fundus photographs (trained on CHASE_DB1, first observer)",
          "rossa": "OCTA en-face images (trained on ROSSA)"}


def _torch():
    try:
        import torch
    except ImportError:
        raise DependencyError("the learned segmenter needs PyTorch: pip install "
                              "'vasomics[dl]' (torch==2.13.0, CPU wheel)") from None
    return torch


# ----------------------------------------------------------------------------- preparation

#: A fundus image is de-noised for the network when its noise exceeds this multiple of the
#: training images' (card ``noise_sd``, 0.47 grey levels of 255): chosen on CHASE_DB1's
#: training split (every second image, Gaussian noise added to RGB): non-local means changed
#: Dice by -0.002 / +0.003 / +0.018 / +0.053 / +0.167 at 1.9 / 2.6 / 3.8 / 5.1 / 7.6 levels
#: (4 / 5.5 / 8 / 11 / 16 times their noise).
DENOISE_ABOVE = 5.0


def noise_sd(grey: np.ndarray, fov: np.ndarray | None = None) -> float:
    """Noise SD of a 2D image (its units) by Immerkaer's estimator (1996): the mean absolute
    response to the 3x3 mask ``[[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`` (a difference of two
    Laplacians, blind to intensity ramps) times sqrt(pi/2) / 6, over ``fov`` shrunk by 3
    pixels (or the whole image)."""
    from scipy import ndimage

    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = np.abs(ndimage.convolve(np.asarray(grey, np.float32), kernel))
    inner = np.ones(response.shape, bool) if fov is None else \
        ndimage.binary_erosion(fov, iterations=3)
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    if not inner.any():
        return 0.0
    return float(np.sqrt(np.pi / 2) * response[inner].mean() / 6)


def _unit_grey(array: np.ndarray) -> np.ndarray:
    """Grey image (RGB -> green channel) scaled to [0, 1] by its dtype range (integers) or
    its min-max (floats)."""
    from vasomics.chain.segment.fov import to_grey

    raw = np.asarray(array)
    grey = to_grey(raw)
    if np.issubdtype(raw.dtype, np.integer):
        return grey / float(np.iinfo(raw.dtype).max)
    lo, hi = float(grey.min()), float(grey.max())
    return (grey - lo) / (hi - lo) if hi > lo else np.zeros_like(grey)


def prepare(array: np.ndarray, fov: np.ndarray | None = None,
            noise_reference: float | None = None) -> np.ndarray:
    """Network input (float32, ``(y, x)``) from a grey or RGB 2D array (see module doc).
    ``noise_reference`` (inference only): the training images' :func:`noise_sd`; a noisier
    image is first de-noised by non-local means (``skimage.restoration.denoise_nl_means``,
    5-pixel patches searched within 3 pixels, ``h`` 0.8 of the excess noise) when its noise
    exceeds :data:`DENOISE_ABOVE` times it (on every second training image with 2.6 / 5.1
    grey levels of noise, searching within 3 pixels instead of 6 gave Dice 0.806 / 0.796
    against 0.805 / 0.790 in half the time)."""
    from skimage.exposure import equalize_adapthist

    grey = _unit_grey(array)
    if noise_reference:
        sd = noise_sd(grey, fov)
        if sd > DENOISE_ABOVE * noise_reference:
            from skimage.restoration import denoise_nl_means

            excess = float(np.sqrt(sd ** 2 - noise_reference ** 2))
            grey = denoise_nl_means(grey, h=0.8 * excess, sigma=excess, patch_size=5,
                                    patch_distance=3, fast_mode=True)
    grey = equalize_adapthist(np.clip(grey, 0, 1), clip_limit=0.01).astype(np.float32)
    inside = grey[fov] if fov is not None and fov.any() else grey
    std = float(inside.std())
    return ((grey - float(inside.mean())) / (std if std > 1e-6 else 1.0)).astype(np.float32)


# ----------------------------------------------------------------------------- network

def build_unet(base: int = 16, levels: int = 4):
    """The compact U-Net (1 input channel, 1 logit output)."""
    torch = _torch()
    nn = torch.nn

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            ch = [base * 2 ** i for i in range(levels)]
            self.down = nn.ModuleList([block(1, ch[0])] + [block(ch[i - 1], ch[i])
                                                            for i in range(1, levels)])
            self.up = nn.ModuleList([nn.ConvTranspose2d(ch[i], ch[i - 1], 2, stride=2)
                                     for i in range(levels - 1, 0, -1)])
            self.dec = nn.ModuleList([block(2 * ch[i - 1], ch[i - 1])
                                      for i in range(levels - 1, 0, -1)])
            self.head = nn.Conv2d(ch[0], 1, 1)

        def forward(self, x):
            skips = []
            for i, d in enumerate(self.down):
                x = d(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            for up, dec, skip in zip(self.up, self.dec, skips[-2::-1], strict=True):
                x = dec(torch.cat([up(x), skip], 1))
            return self.head(x)

    return UNet()


def _pad_to(x: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    h, w = x.shape
    ph, pw = (-h) % multiple, (-w) % multiple
    return np.pad(x, ((0, ph), (0, pw)), mode="reflect"), (h, w)


def predict_probability(model, prepared: np.ndarray, levels: int = 4, flips: int = 1
                        ) -> np.ndarray:
    """Vessel probability (float32, same shape) of a prepared image; ``flips`` 2 or 4
    averages over horizontally (and vertically) flipped copies (test-time augmentation)."""
    torch = _torch()
    x, (h, w) = _pad_to(prepared, 2 ** (levels - 1))
    model.eval()
    model = model.to(memory_format=torch.channels_last)  # about 2x faster convolutions on CPU
    t = torch.from_numpy(x)[None, None].contiguous(memory_format=torch.channels_last)
    dims = [(), (3,), (2,), (2, 3)][:flips]
    with torch.inference_mode():
        out = sum(torch.sigmoid(model(t.flip(d) if d else t)).flip(d) if d else
                  torch.sigmoid(model(t)) for d in dims) / len(dims)
    return out[0, 0, :h, :w].numpy().astype(np.float32)


# ----------------------------------------------------------------------------- weights

def weights_path(name: str) -> Path:
    """Path of the ``.pt`` weight file of a shipped model (may not exist)."""
    if name not in MODELS:
        raise ParameterError(f"unknown learned model {name!r}; known: {', '.join(MODELS)}")
    return WEIGHTS_DIR / f"{name}.pt"


def load_model(name_or_path: str | Path):
    """Load a trained model and its JSON card: returns ``(model, card)``."""
    torch = _torch()
    path = Path(name_or_path)
    if path.suffix != ".pt":
        path = weights_path(str(name_or_path))
    card_path = path.with_suffix(".json")
    if not path.is_file() or not card_path.is_file():
        raise DependencyError(f"weights not found (expected {path.name} and {card_path.name}); "
                              f"make them with: vasomics segmenter train --dataset "
                              f"{path.stem if path.stem in MODELS else 'chase|rossa'}", path)
    card = json.loads(card_path.read_text())
    model = build_unet(card["base"], card["levels"])
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    return model, card


def recover_thin(prob: np.ndarray, mask: np.ndarray, low: float,
                 fov: np.ndarray | None = None) -> np.ndarray:
    """``mask`` plus the centre lines of faint vessels continuing it: the 8-connected
    components of ``prob >= low`` (inside ``fov``) that touch ``mask`` are skeletonized
    (``skimage.morphology.skeletonize``) and the 1-pixel skeleton is added. Inside the vessels
    of ``mask`` the skeleton adds nothing; outside, it continues them along thin vessels the
    network sees only faintly, adding length with almost no area (a hysteresis
    threshold that keeps the widths of ``mask``)."""
    import cc3d
    from skimage.morphology import skeletonize

    mask = np.asarray(mask, bool)
    weak = np.asarray(prob) >= low
    if fov is not None:
        weak &= fov
    labels = cc3d.connected_components(weak | mask, connectivity=8)
    ids = np.unique(labels[mask])
    grown = np.isin(labels, ids[ids > 0])
    return mask | skeletonize(grown)


def scale_factor(card: dict, image: np.ndarray, fov: np.ndarray | None = None,
                 tolerance: float = 0.05) -> float:
    """Resampling factor that brings a fundus image to its model's training scale: the
    card's ``aperture_diameter_px`` (median diameter of the training images' camera aperture)
    over the image's (:func:`~vasomics.chain.segment.fov.fundus_aperture`; ``fov`` when no
    aperture is found), through :func:`~vasomics.chain.segment.fov.fundus_scale` (1.0 for an
    aperture that is no disc: a crop inside the retina). 1.0 within ``tolerance`` of it and
    for models without that entry (OCTA: nothing in the image gives its scale). Fundus
    cameras image the retina at 0.5-4x the training images' pixels, and the network's
    receptive field is fixed in pixels."""
    from vasomics.chain.segment.fov import image_scale

    reference = card.get("aperture_diameter_px")
    if not reference:
        return 1.0
    factor = image_scale(image, reference, fov)
    return 1.0 if abs(factor - 1.0) <= tolerance else factor


def segment_learned(array: np.ndarray, model_name: str = "chase",
                    fov: np.ndarray | None = None, *, threads: int | None = None,
                    flips: int = 4, thin_recovery: bool = False, rescale: bool = True,
                    denoise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Segment a 2D image with a shipped model: returns ``(mask, probability)``.

    ``fov`` (boolean, same ``(y, x)`` shape) restricts the mask; without it, fundus models
    derive one with :func:`~vasomics.chain.segment.fov.fundus_fov`. ``flips``: test-time
    augmentation (1: none; 4: mean over the 4 horizontal/vertical flips, the default; it
    adds about 0.003 Dice on CHASE_DB1 for 4x the network time). ``thin_recovery``: add
    the centre lines of faint thin vessels (:func:`recover_thin` at the card's
    ``thin_low``, chosen on the training split); on CHASE_DB1 it brings the total centerline
    length to the manual one (see the card's ``thin_recovery`` entry for its figures).
    ``rescale``: a fundus image whose camera aperture is more than 5 % narrower or wider than
    the training images' is resampled to their scale for the network and its probability
    resampled back (:func:`scale_factor`); on CHASE_DB1's test images resampled to 0.55x and
    2.5x, Dice 0.788 and 0.792 with it, 0.741 and 0.428 without
    (``benchmarks/eval_segment_learned.py --scales``). ``denoise``: a fundus image noisier
    than :data:`DENOISE_ABOVE` times the training images (card ``noise_sd``) is de-noised
    first (:func:`prepare`); CHASE_DB1's own images are far below that.
    """
    from vasomics.chain.segment.fov import fundus_fov

    a = np.asarray(array)
    shape = a.shape[:2]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise InputError(f"the learned segmenter takes 2D grey or RGB images, got shape "
                         f"{a.shape}")
    if fov is None and model_name == "chase":
        fov = fundus_fov(a)
    if fov is not None and np.shape(fov) != shape:
        raise InputError(f"field-of-view mask shape {np.shape(fov)} does not match the image "
                         f"{shape}")
    torch = _torch()
    if threads:
        torch.set_num_threads(threads)
    model, card = load_model(model_name)
    factor = scale_factor(card, a, fov) if rescale else 1.0
    reference = card.get("noise_sd") if denoise else None
    if factor == 1.0:
        prob = predict_probability(model, prepare(a, fov, reference), card["levels"], flips)
    else:  # run at the training images' scale, the probability resampled back
        from skimage.transform import resize

        size = tuple(max(1, round(n * factor)) for n in shape)
        green = a[..., 1] if a.ndim == 3 else a  # the channel the network reads (prepare)
        scaled = resize(green.astype(np.float32), size, order=1, anti_aliasing=factor < 1,
                        preserve_range=True)
        if np.issubdtype(a.dtype, np.integer):
            scaled = np.round(scaled)
        fov_s = None if fov is None else resize(fov.astype(np.float32), size, order=1) >= 0.5
        prob_s = predict_probability(model, prepare(scaled.astype(a.dtype), fov_s, reference),
                                     card["levels"], flips)
        prob = resize(prob_s, shape, order=1).astype(np.float32)
    mask = prob >= card["threshold"]
    if fov is not None:
        mask &= fov
    if thin_recovery:
        if "thin_low" not in card:
            raise ParameterError(f"model {model_name!r} has no thin_low in its card; "
                                 f"thin_recovery is available for: chase")
        mask = recover_thin(prob, mask, card["thin_low"], fov)
        prob = np.where(fov, prob, 0).astype(np.float32)
    return mask, prob


# ----------------------------------------------------------------------------- training

class TrainParams(StageParams):
    """Training of the learned 2D segmenter (defaults: the shipped CHASE model)."""

    base: int = 8  # channels of the first U-Net level (doubling per level)
    levels: int = 4  # U-Net resolution levels
    patch: int = 128  # training patch edge (pixels)
    batch: int = 4  # patches per iteration
    iterations: int = 6000  # optimizer steps
    lr: float = 2e-3  # Adam learning rate (cosine decay to 2 % of it)
    validate_every: int = 500  # iterations between validation passes (best checkpoint kept)
    n_val: int = 2  # training images held out for validation/threshold selection
    seed: int = 0  # random seed (patches, augmentation, initialisation, split)
    threads: int = 1  # torch CPU threads
    cldice_weight: float = 0.0  # weight of the soft clDice loss term (0: BCE + soft Dice only)
    skeleton_iterations: int = 5  # soft-skeleton erosion steps of the clDice term (pixels)
    val_flips: int = 1  # flip test-time augmentation on the validation images (1, 2 or 4)
    threshold_rule: Literal["dice", "length"] = "dice"  # decision threshold on the validation
    # images: "dice" maximizes Dice; "length" matches centerline length and area (_length_threshold)
    thin_weight: float = 0.0  # extra binary cross-entropy weight of thin-vessel pixels: weight
    # 1 + thin_weight on manual vessel pixels of vessels at most thin_width_px wide
    thin_width_px: int = 2  # width limit of the thin-vessel weighting (thin_vessel_mask)
    init: str | None = None  # start from these weights (a .pt file with its card, same base and
    # levels: fine-tuning); None: random initialisation


def load_dataset(name: str, root: str | Path, split: str = "train"
                 ) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Images of a data set folder: list of ``(id, image, manual mask, fov)``.

    ``chase``: ``<root>/{training,test}/images/*.jpg`` with ``mask/*_1stHO.png``;
    ``rossa``: ``<root>/{train_manual,val}/image/*.png`` with ``label/*.png``.
    """
    from PIL import Image as PILImage

    from vasomics.chain.segment.fov import fundus_fov

    root = Path(root)
    items = []
    if name == "chase":
        folder = root / {"train": "training", "test": "test"}[split]
        for img_path in sorted((folder / "images").glob("*.jpg")):
            rgb = np.asarray(PILImage.open(img_path).convert("RGB"))
            gt = np.asarray(PILImage.open(folder / "mask" / f"{img_path.stem}_1stHO.png")) > 0
            items.append((img_path.stem, rgb, gt, fundus_fov(rgb)))
    elif name == "rossa":
        folder = root / {"train": "train_manual", "test": "val", "val": "val"}[split]
        for img_path in sorted((folder / "image").glob("*.png"), key=lambda p: int(p.stem)):
            grey = np.asarray(PILImage.open(img_path).convert("L"))
            gt = np.asarray(PILImage.open(folder / "label" / img_path.name).convert("L")) > 127
            items.append((img_path.stem, grey, gt, np.ones(grey.shape, bool)))
    else:
        raise ParameterError(f"unknown data set {name!r} (chase or rossa)")
    if not items:
        raise InputError(f"no {name} images found under {folder}")
    return items


def _augment(rng: np.random.Generator, x: np.ndarray, y: np.ndarray,
             w: np.ndarray | None = None):
    """Random 90-degree rotation, flip and intensity jitter of image ``x``; the label ``y``
    and the optional pixel weights ``w`` get the same rotation and flip (the random draws do
    not depend on ``w``)."""
    k = int(rng.integers(4))
    x, y = np.rot90(x, k), np.rot90(y, k)
    w = None if w is None else np.rot90(w, k)
    if rng.random() < 0.5:
        x, y = x[:, ::-1], y[:, ::-1]
        w = None if w is None else w[:, ::-1]
    x = x * rng.uniform(0.8, 1.25) + rng.normal(0, 0.2)  # contrast/brightness jitter
    out = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32)
    return out if w is None else (*out, np.ascontiguousarray(w, np.float32))


def thin_vessel_mask(label: np.ndarray, width_px: int = 2) -> np.ndarray:
    """Pixels of a binary vessel label that belong to vessels at most ``width_px`` pixels
    wide: the label minus the dilation (by a disc of radius ``width_px``) of its erosion by a
    disc of radius ``ceil(width_px / 2)`` (what survives that erosion is wider than
    ``width_px``; the dilation gives wide vessels their rim back)."""
    from scipy import ndimage as ndi
    from skimage.morphology import disk

    label = np.asarray(label, bool)
    core = ndi.binary_erosion(label, disk(-(-width_px // 2)))
    return label & ~ndi.binary_dilation(core, disk(width_px))


def soft_skeleton(prob, iterations: int):
    """Soft skeleton of a probability map ``(n, 1, y, x)`` (Shit et al., CVPR 2021): iterated
    soft erosion (min-pooling over 3x1 and 1x3) minus soft opening, ``iterations`` steps."""
    torch = _torch()
    f = torch.nn.functional

    def erode(x):
        return torch.minimum(-f.max_pool2d(-x, (3, 1), 1, (1, 0)),
                             -f.max_pool2d(-x, (1, 3), 1, (0, 1)))

    def opening(x):
        return f.max_pool2d(erode(x), 3, 1, 1)

    skel = f.relu(prob - opening(prob))
    for _ in range(iterations):
        prob = erode(prob)
        delta = f.relu(prob - opening(prob))
        skel = skel + f.relu(delta - skel * delta)
    return skel


def soft_cldice_loss(prob, target, iterations: int, smooth: float = 1.0):
    """1 - soft clDice of a probability map and a binary target (both ``(n, 1, y, x)``):
    topology precision ``Σ S(P)·G / Σ S(P)``, sensitivity ``Σ S(G)·P / Σ S(G)``, harmonic mean."""
    sp, sg = soft_skeleton(prob, iterations), soft_skeleton(target, iterations)
    tprec = ((sp * target).sum() + smooth) / (sp.sum() + smooth)
    tsens = ((sg * prob).sum() + smooth) / (sg.sum() + smooth)
    return 1 - 2 * tprec * tsens / (tprec + tsens)


def _length_threshold(probs, gts, fovs) -> tuple[float, float]:
    """Threshold (0.20-0.70, step 0.05) whose masks on the validation images come closest to
    the manual masks in total centerline length (skeleton pixels) and in area:
    minimizes ``|ln(L_pred / L_manual)| + |ln(A_pred / A_manual)|``. Returns
    ``(threshold, validation Dice at it)``."""
    from skimage.morphology import skeletonize

    n_len = sum(int(np.count_nonzero(skeletonize(g & f))) for g, f in zip(gts, fovs, strict=True))
    n_area = sum(int(np.count_nonzero(g & f)) for g, f in zip(gts, fovs, strict=True))
    best = (0.5, np.inf, -1.0)
    for t in np.arange(0.2, 0.71, 0.05):
        masks = [(p >= t) & f for p, f in zip(probs, fovs, strict=True)]
        p_len = sum(int(np.count_nonzero(skeletonize(m))) for m in masks)
        p_area = sum(int(np.count_nonzero(m)) for m in masks)
        cost = abs(np.log(max(p_len, 1) / max(n_len, 1))) + abs(np.log(max(p_area, 1) /
                                                                     max(n_area, 1)))
        inter = sum(int(np.count_nonzero(m & g)) for m, g in zip(masks, gts, strict=True))
        dice = 2 * inter / max(p_area + n_area, 1)
        if cost < best[1] - 1e-12:
            best = (round(float(t), 2), cost, dice)
    return best[0], best[2]


def _best_threshold(probs, gts, fovs) -> tuple[float, float]:
    best = (0.5, -1.0)
    for t in np.arange(0.3, 0.71, 0.05):
        inter = sum(int(np.count_nonzero((p >= t) & g & f)) for p, g, f in zip(probs, gts, fovs, strict=True))
        total = sum(int(np.count_nonzero((p >= t) & f)) + int(np.count_nonzero(g & f))
                    for p, g, f in zip(probs, gts, fovs, strict=True))
        dice = 2 * inter / max(total, 1)
        if dice > best[1]:
            best = (round(float(t), 2), dice)
    return best


def train(dataset: str, root: str | Path, out: str | Path, params: TrainParams | None = None,
          *, progress: Callable[[str], None] | None = None, command: str = "") -> dict:
    """Train the U-Net on ``dataset`` (chase or rossa) under ``root``; write ``out`` (.pt) and
    its JSON card; return the card. The best validation checkpoint is kept."""
    torch = _torch()
    p = params or TrainParams()
    previous = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    torch.use_deterministic_algorithms(True)
    try:
        return _train(torch, dataset, root, out, p, progress, command)
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])


def _train(torch, dataset, root, out, p: TrainParams, progress, command) -> dict:
    torch.manual_seed(p.seed)
    torch.set_num_threads(p.threads)
    rng = np.random.default_rng(p.seed)
    items = load_dataset(dataset, root, "train")
    order = rng.permutation(len(items))
    n_val = min(p.n_val, len(items) - 1)
    val = [items[i] for i in order[:n_val]]
    tr = [items[i] for i in order[n_val:]]
    xs = [prepare(im, fov) for _, im, _, fov in tr]
    ys = [gt & fov for _, _, gt, fov in tr]
    ws = ([1 + p.thin_weight * thin_vessel_mask(y, p.thin_width_px) for y in ys]
          if p.thin_weight > 0 else None)
    xv = [prepare(im, fov) for _, im, _, fov in val]
    model = build_unet(p.base, p.levels)
    init = None
    if p.init:
        import hashlib

        start, start_card = load_model(p.init)
        if (start_card["base"], start_card["levels"]) != (p.base, p.levels):
            raise ParameterError(f"--init weights have base {start_card['base']}, levels "
                                 f"{start_card['levels']}; training uses {p.base}, {p.levels}")
        model.load_state_dict(start.state_dict())
        init_path = Path(p.init) if Path(p.init).suffix == ".pt" else weights_path(p.init)
        init = {"file": init_path.name,
                "sha256": hashlib.sha256(init_path.read_bytes()).hexdigest()}
    opt = torch.optim.Adam(model.parameters(), lr=p.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, p.iterations, eta_min=p.lr * 0.02)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    best = {"dice": -1.0}
    t0 = time.time()
    for it in range(1, p.iterations + 1):
        bx, by, bw = [], [], []
        for _ in range(p.batch):
            j = int(rng.integers(len(xs)))
            h, w = xs[j].shape
            ps = min(p.patch, h, w) // 8 * 8
            r0, c0 = int(rng.integers(h - ps + 1)), int(rng.integers(w - ps + 1))
            crop = (slice(r0, r0 + ps), slice(c0, c0 + ps))
            aug = _augment(rng, xs[j][crop], ys[j][crop], None if ws is None else ws[j][crop])
            bx.append(aug[0])
            by.append(aug[1])
            bw.extend(aug[2:])
        model.train()
        xb = torch.from_numpy(np.stack(bx))[:, None]
        yb = torch.from_numpy(np.stack(by))[:, None]
        wb = torch.from_numpy(np.stack(bw))[:, None] if bw else None
        logits = model(xb)
        prob = torch.sigmoid(logits)
        dice = 1 - (2 * (prob * yb).sum() + 1) / (prob.sum() + yb.sum() + 1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, yb, wb) + dice
        if p.cldice_weight > 0:
            loss = loss + p.cldice_weight * soft_cldice_loss(prob, yb, p.skeleton_iterations)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % p.validate_every == 0 or it == p.iterations:
            probs = [predict_probability(model, x, p.levels, p.val_flips) for x in xv]
            choose = _length_threshold if p.threshold_rule == "length" else _best_threshold
            thr, vdice = choose(probs, [v[2] for v in val], [v[3] for v in val])
            msg = (f"iteration {it}/{p.iterations}: loss {loss.item():.4f}, validation Dice "
                   f"{vdice:.4f} at threshold {thr} ({time.time() - t0:.0f} s)")
            log.info(msg)
            if progress:
                progress(msg)
            if vdice > best["dice"]:
                best = {"dice": vdice, "threshold": thr, "iteration": it}
                torch.save(model.state_dict(), out)
    card = {"model": "unet", "base": p.base, "levels": p.levels, "dataset": dataset,
            "data": str(root), "train_images": [t[0] for t in tr],
            "validation_images": [v[0] for v in val], "params": p.model_dump(), "init": init,
            "threshold": best["threshold"], "best_iteration": best["iteration"],
            "validation_dice": round(best["dice"], 4), "training_seconds": round(time.time() - t0),
            "torch": torch.__version__, "command": command}
    if dataset == "chase":  # fundus: the scale segment_learned brings images to
        from vasomics.chain.segment.fov import fov_diameter_px, fundus_aperture

        card["aperture_diameter_px"] = float(np.median(
            [fov_diameter_px(fundus_aperture(im)) for _, im, _, _ in items]))
        card["noise_sd"] = float(np.median([noise_sd(_unit_grey(im), f) for _, im, _, f in items]))
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card
