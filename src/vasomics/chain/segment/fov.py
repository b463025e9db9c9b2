"""Field-of-view (FOV) masks for 2D retinal images and grey-level conversion of 2D inputs.

Fundus photographs show the retina inside a bright disc surrounded by a black border.
Data sets such as CHASE_DB1 ship no FOV mask, so :func:`fundus_fov` derives one: the red
channel (the brightest, least noisy channel inside the retina) is thresholded at a fraction
of its robust maximum, the largest connected component is kept, holes are filled and the
border is eroded by ``erode_px`` pixels to drop the bright rim artefact.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from vasomics.errors import InputError


def to_grey(array: np.ndarray, *, channel: str = "green") -> np.ndarray:
    """Scalar float32 image from a 2D grey, RGB or RGBA array.

    Conversion (documented, deterministic): RGB(A) -> the ``channel`` named ("green": the
    channel with the best vessel contrast in fundus photographs; "luminance": ITU-R BT.601
    weights); alpha is dropped. Integer types keep their values (uint16 is not rescaled);
    NaNs are rejected with one line.
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        rgb = a[..., :3].astype(np.float32)
        if channel == "green":
            a = rgb[..., 1]
        elif channel == "luminance":
            a = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        else:
            raise InputError(f"unknown colour conversion {channel!r} (green or luminance)")
    elif a.ndim != 2:
        raise InputError(f"expected a 2D grey or RGB image, got shape {a.shape}")
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise InputError(f"image holds {int(np.count_nonzero(~np.isfinite(a)))} NaN or "
                         "infinite pixels")
    return a


def fundus_fov(rgb: np.ndarray, *, fraction: float = 0.15, erode_px: int = 3) -> np.ndarray:
    """Boolean FOV mask of a fundus photograph (``(y, x, 3)`` RGB, any integer/float type).

    Red channel > ``fraction`` x its 99th percentile, largest component, holes filled,
    eroded by ``erode_px``. A grey image is thresholded the same way.
    """
    a = np.asarray(rgb)
    red = a[..., 0] if a.ndim == 3 else a
    red = red.astype(np.float32)
    hi = float(np.percentile(red, 99))
    if hi <= 0:
        raise InputError("fundus image is black: no field of view")
    fov = red > fraction * hi
    fov = ndi.binary_opening(fov, iterations=2)
    lab, n = ndi.label(fov)
    if n == 0:
        raise InputError("no field of view found in the fundus image")
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    fov = ndi.binary_fill_holes(lab == int(np.argmax(sizes)))
    if erode_px > 0:
        fov = ndi.binary_erosion(fov, iterations=erode_px)
    return fov


def fundus_aperture(rgb: np.ndarray) -> np.ndarray:
    """The camera's circular aperture in a fundus photograph: :func:`fundus_fov`, not
    eroded, at 3 % of the way from the frame's level to the red channel's 99th percentile.
    The frame's level is the 99th percentile of the four corner squares (a twentieth of the
    smaller side; 0 in CHASE_DB1), taken only when it is dark (under a quarter of the 99th
    percentile; otherwise the image is no framed disc and the level is 0). Unlike the
    analysis FOV it keeps a dark periphery (CHASE_DB1's test images darkened by gamma 2:
    aperture 914-921 px across, 921-925 px unaltered, while the FOV narrows to 638 px), and a
    frame of grey noise does not leak into it (12 +- 4 grey levels: 919-921 px, 965-998 px
    without the frame's level), so its diameter gives the image's scale."""
    a = np.asarray(rgb)
    red = (a[..., 0] if a.ndim == 3 else a).astype(np.float32)
    hi = float(np.percentile(red, 99))
    if hi <= 0:
        raise InputError("fundus image is black: no field of view")
    k = max(2, min(red.shape) // 20)
    corners = np.concatenate([red[:k, :k].ravel(), red[:k, -k:].ravel(), red[-k:, :k].ravel(),
                              red[-k:, -k:].ravel()])
    frame = float(np.percentile(corners, 99))
    if frame >= 0.25 * hi:
        frame = 0.0
    return fundus_fov(rgb, fraction=(frame + 0.03 * (hi - frame)) / hi, erode_px=0)


def fov_diameter_px(fov: np.ndarray) -> float:
    """Diameter of a fundus field of view in pixels: its largest extent along either axis
    (robust to discs cut at the top and bottom of the frame, as in many cameras)."""
    fov = np.asarray(fov, bool)
    if not fov.any():
        raise InputError("field of view is empty")
    return float(max(np.ptp(np.flatnonzero(fov.any(axis=a))) + 1 for a in (0, 1)))


def fundus_scale(fov: np.ndarray, reference_px: float) -> float:
    """Factor that brings a fundus image to the scale of images whose field of view is
    ``reference_px`` across: ``reference_px`` / :func:`fov_diameter_px`. 1.0 when ``fov`` is
    no disc (a corner square of its bounding box, a tenth of its extent on a side, more than
    half covered): a crop inside the retina, or a whole-image mask, carries no scale."""
    fov = np.asarray(fov, bool)
    rows, cols = np.flatnonzero(fov.any(axis=1)), np.flatnonzero(fov.any(axis=0))
    if rows.size == 0:
        raise InputError("field of view is empty")
    box = fov[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    k = max(1, round(0.1 * min(box.shape)))
    corners = (box[:k, :k], box[:k, -k:], box[-k:, :k], box[-k:, -k:])
    if max(float(c.mean()) for c in corners) > 0.5:
        return 1.0
    return float(reference_px) / fov_diameter_px(fov)


def image_scale(image: np.ndarray, reference_px: float,
                fov: np.ndarray | None = None) -> float:
    """:func:`fundus_scale` of a fundus photograph's :func:`fundus_aperture` (found on every
    n-th pixel of images over 2000 px, its diameter scaled back), or of ``fov`` when the
    image has no aperture (black); 1.0 when neither gives a disc."""
    step = max(1, min(np.shape(image)[:2]) // 1000)
    try:
        disc = fundus_aperture(np.asarray(image)[::step, ::step])
    except InputError:
        disc, step = fov, 1
    if disc is None or not np.any(disc):
        return 1.0
    return fundus_scale(disc, reference_px / step)


def fill_outside(image: np.ndarray, inside: np.ndarray, spacing=(1.0, 1.0), *,
                 scale_mm: float = 40.0) -> np.ndarray:
    """Replace pixels outside ``inside`` by a smooth continuation of the inside (float32).

    Normalized Gaussian convolution, ``sum G*(I m) / sum G*m`` with ``m`` the inside mask,
    at Gaussian sigmas ``scale_mm x (0.1, 0.4, 1.5)`` (mm, per axis via ``spacing``): each
    outside pixel takes the finest scale at which enough inside pixels lie near it
    (weight > 1e-3); pixels beyond all scales get the inside mean. Filters applied afterwards
    then see no step at the field-of-view edge (which would respond as a vessel).
    """
    from vasomics.chain.segment.vesselness import gaussian_smooth

    img = np.asarray(image, np.float32)
    inside = np.asarray(inside, bool)
    if inside.shape != img.shape:
        raise InputError(f"mask shape {inside.shape} does not match the image {img.shape}")
    if not inside.any():
        raise InputError("cannot fill outside an empty mask")
    out = img.copy()
    m = inside.astype(np.float32)
    done = inside.copy()
    masked = img * m
    for factor in (0.1, 0.4, 1.5):
        sigma = [max(scale_mm * factor / float(s), 0.5) for s in spacing]
        num, den = gaussian_smooth(masked, sigma), gaussian_smooth(m, sigma)
        ok = ~done & (den > 1e-3)
        out[ok] = num[ok] / den[ok]
        done |= ok
        if done.all():
            break
    if not done.all():
        out[~done] = float(img[inside].mean())
    return out
