"""Validation of binary masks: the one place that decides what a usable vessel mask is."""

from __future__ import annotations

import numpy as np

from vasomics.errors import InputError
from vasomics.image import Image


def binary_mask(mask: Image | np.ndarray, path=None, *, allow_empty: bool = False,
                allow_full: bool = False) -> np.ndarray:
    """Return ``mask`` as a boolean array after checking that it is a usable binary mask.

    Accepted values are {0, 1}, {0, 255} or booleans (any single non-zero value counts as
    foreground). Raises :class:`InputError` (naming ``path``) for NaN or infinite values, more
    than one non-zero value, a multi-channel array, an empty mask (unless ``allow_empty``) or
    a mask that is all foreground (unless ``allow_full``).
    """
    array = mask.array if isinstance(mask, Image) else np.asarray(mask)
    if isinstance(mask, Image) and mask.n_channels != 1:
        raise InputError(f"mask has {mask.n_channels} channels; expected a single-channel mask",
                         path)
    if array.dtype == bool:
        out = array
    elif np.issubdtype(array.dtype, np.integer) and array.size and _is_binary_int(array):
        out = array != 0  # fast path: min/max and two counts instead of np.unique
    else:
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            raise InputError("mask contains NaN or infinite values", path)
        nonzero = np.unique(array[array != 0]) if array.size <= 5e7 else _nonzero_values(array)
        if nonzero.size > 1:
            shown = ", ".join(f"{v:g}" for v in nonzero[:5])
            raise InputError(f"mask is not binary: found values 0 and {shown}"
                             f"{' ...' if nonzero.size > 5 else ''}; pass a binary mask or "
                             f"select one label", path)
        out = array != 0
    count = int(np.count_nonzero(out))
    if count == 0 and not allow_empty:
        raise InputError("mask is empty (no foreground voxels)", path)
    if count == out.size and not allow_full:
        raise InputError("mask is all foreground; expected vessels on a background", path)
    return out


def _is_binary_int(array: np.ndarray) -> bool:
    """True when an integer array holds 0 and at most one other value (which is > 0)."""
    lo, hi = array.min(), array.max()
    if lo < 0 or (lo > 0 and lo != hi):
        return False
    if hi == 0 or lo == hi:
        return True
    return np.count_nonzero(array) == np.count_nonzero(array == hi)


def _nonzero_values(array: np.ndarray, max_values: int = 6) -> np.ndarray:
    """Distinct non-zero values of a large array, chunk by chunk, stopping early."""
    found: set = set()
    flat = array.reshape(-1)
    step = 1 << 24
    for start in range(0, flat.size, step):
        chunk = flat[start:start + step]
        found.update(np.unique(chunk[chunk != 0]).tolist())
        if len(found) >= max_values:
            break
    return np.array(sorted(found))
