"""Writing without leaving partial output behind: temporary names, then rename.

``atomic_file`` writes one file; ``staged_output_dir`` writes a whole set of outputs into a
hidden staging folder beside the target and moves them in only when everything succeeded.
Both give their results the permissions a plain ``open`` / ``mkdir`` would (``0o666`` /
``0o777`` less the process umask), not the owner-only ones of :mod:`tempfile`, so outputs in
a shared folder stay readable by the group as usual.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from vasomics.errors import OutputError


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc``), else by
    setting and restoring it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) if needed and check it is a writable folder."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError("output path exists and is not a folder", path) from None
    except OSError as exc:
        raise OutputError(f"cannot create output folder ({exc.strerror or exc})", path) from None
    if not path.is_dir():
        raise OutputError("output path exists and is not a folder", path)
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError("output folder is not writable", path)
    return path


@contextlib.contextmanager
def atomic_file(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` on success,
    delete it on failure. ``suffix`` (default: the target's) keeps writers that choose the
    format by extension happy."""
    path = Path(path)
    folder = ensure_writable_dir(path.parent if str(path.parent) else ".")
    try:  # a folder that passes the access check may still refuse files (/proc, a full disk)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.",
                                   suffix=suffix or "".join(path.suffixes), dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write output ({exc.strerror or exc})", path) from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise OutputError(f"cannot write output ({exc.strerror or exc})", path) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def staged_output_dir(outdir: str | Path, supersedes: Sequence[str] = ()) -> Iterator[Path]:
    """Yield a staging folder beside ``outdir``; on success its files replace those of the
    same name in ``outdir`` (each by an atomic rename), on failure it is removed and
    ``outdir`` is left exactly as it was.

    ``supersedes``: glob patterns (relative to ``outdir``) of the files an earlier write of
    the same kind may have left; those the new set does not contain are removed once it is
    in place, so the folder holds one consistent set (a scan that fails QC leaves no
    earlier scan's vessels beside its verdict, a shorter DICOM series no earlier slices).
    Other files in ``outdir`` are never touched."""
    outdir = Path(outdir)
    parent = ensure_writable_dir(outdir.parent if str(outdir.parent) else ".")
    if outdir.exists() and not outdir.is_dir():
        raise OutputError("output path exists and is not a folder", outdir)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.partial-", dir=parent))
        os.chmod(staging, 0o777 & ~_umask())
    except OSError as exc:
        raise OutputError(f"cannot write output ({exc.strerror or exc})", outdir) from None
    try:
        yield staging
        if not outdir.exists():
            os.replace(staging, outdir)
            return
        written = set()
        for item in sorted(staging.rglob("*")):
            target = outdir / item.relative_to(staging)
            if item.is_dir():
                target.mkdir(exist_ok=True)
            else:
                os.replace(item, target)
                written.add(target)
        for pattern in supersedes:
            for stale in outdir.glob(pattern):
                if stale not in written and stale.is_file():
                    stale.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write output ({exc.strerror or exc})", outdir) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
