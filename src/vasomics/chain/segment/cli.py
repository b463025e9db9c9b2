"""``vasomics segment`` and ``vasomics segmenter train``."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from vasomics.chain.segment.api import presets
from vasomics.cli import progress_bar
from vasomics.errors import OutputError, VasomicsError
from vasomics.io.raster import PLANAR_FORMATS


@click.command("segment")
@click.argument("image", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=Path),
              help="Vessel mask to write (format from the extension, e.g. .nii.gz, .png).")
@click.option("--preset", default="cta", show_default=True,
              help=f"Preset name ({', '.join(presets())}) or a preset YAML file.")
@click.option("--method", type=click.Choice(["frangi", "sato", "jerman", "line", "learned",
                                             "totalsegmentator", "nnunet", "aorta"]),
              help="Override the preset's method.")
@click.option("--region", type=click.Path(path_type=Path),
              help="Binary mask (FOV or organ) restricting the search; same grid as IMAGE.")
@click.option("--score", type=click.Path(path_type=Path),
              help="Also write the score map (vesselness or probability, float32).")
@click.option("--spacing", type=float, nargs=2, default=None,
              help="2D pixel size in mm (y x) for PNG/JPEG inputs without one.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def segment_command(image, output, preset, method, region, score, spacing, quiet):
    """Segment vessels in IMAGE and write a binary mask to OUTPUT."""
    from vasomics.chain.segment.api import segment
    from vasomics.io.images import read_image, read_mask, write_image

    img = read_image(image, spacing=spacing)
    _check_outputs(img.ndim, output, score)
    region_mask = read_mask(region, like=img)[1] if region else None
    with progress_bar(100, "segmenting", quiet) as bar:
        state = {"done": 0}

        def progress(fraction: float) -> None:
            step = int(round(100 * fraction)) - state["done"]
            if step > 0:
                bar.update(step)
                state["done"] += step

        try:
            result = segment(img, preset, method=method, region=region_mask,
                             progress=progress)
        except VasomicsError as exc:
            if exc.path is None:  # name the image the problem belongs to
                exc.path = str(image)
            raise
        progress(1.0)
    mask = result.mask.with_array(result.mask.array.astype("uint8"))
    if output.suffix.lower() in PLANAR_FORMATS:
        mask = mask.with_array(mask.array * 255)
    write_image(mask, output)
    if score and result.score is not None:
        write_image(result.score, score)
    n = int(result.mask.array.sum())
    click.echo(f"{output}: {n} vessel voxels ({100 * n / result.mask.array.size:.2f} %)")


#: Lossy formats, which no mask survives.
_LOSSY = (".jpg", ".jpeg")


def _check_outputs(ndim: int, output: Path, score: Path | None) -> None:
    """Refuse, before segmenting, outputs their format cannot hold: a JPEG mask (lossy: its
    compression noise reads back as foreground), a 3D mask in a 2D format, a 2D mask as a
    DICOM series (a path without extension), a float score map in an 8-bit format."""
    ext = output.suffix.lower()
    if ext in _LOSSY:
        raise OutputError("JPEG is lossy and would corrupt the mask; write it as .png", output)
    if ndim == 3 and ext in PLANAR_FORMATS:
        raise OutputError(f"{ext} files hold 2D images; write a 3D mask as .nii.gz or .tif",
                          output)
    if ndim == 2 and not ext:
        raise OutputError("a folder receives a 3D DICOM series; write a 2D mask as .png",
                          output)
    if score is not None and Path(score).suffix.lower() in PLANAR_FORMATS:
        raise OutputError("the score map is float32; write it as .tif or .nii.gz", score)


@click.group("segmenter")
def segmenter() -> None:
    """Learned 2D segmenters (fundus, OCTA)."""


@segmenter.command("train")
@click.option("--dataset", type=click.Choice(["chase", "rossa"]), required=True)
@click.option("--data", "data", required=True, type=click.Path(exists=True, path_type=Path),
              help="Data set folder (chase_db1/ with training/, or rossa/ with train_manual/).")
@click.option("-o", "--output", "output", required=True, type=click.Path(path_type=Path),
              help="Weight file to write (.pt); the JSON card is written beside it.")
@click.option("--iterations", type=int, default=None, help="Optimizer steps.")
@click.option("--n-val", type=int, default=None, help="Training images held out for validation.")
@click.option("--validate-every", type=int, default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="Torch CPU threads.")
@click.option("--cldice-weight", type=float, default=None,
              help="Weight of the soft clDice loss term (default 0).")
@click.option("--val-flips", type=click.Choice(["1", "2", "4"]), default=None,
              help="Flip test-time augmentation on the validation images (default 1).")
@click.option("--threshold-rule", type=click.Choice(["dice", "length"]), default=None,
              help="Decision threshold: best validation Dice (default) or validation length "
              "and area matching the manual masks.")
@click.option("--thin-weight", type=float, default=None,
              help="Extra cross-entropy weight of thin-vessel pixels (default 0).")
@click.option("--thin-width-px", type=int, default=None,
              help="Widest vessel (pixels) that --thin-weight counts as thin (default 2).")
@click.option("--lr", type=float, default=None, help="Adam learning rate (default 2e-3).")
@click.option("--init", "init", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from these weights (.pt with its .json card): fine-tuning.")
def train_command(dataset, data, output, iterations, n_val, validate_every, seed, threads,
                  cldice_weight, val_flips, threshold_rule, thin_weight, thin_width_px, lr,
                  init):
    """Train the compact U-Net; the best validation checkpoint is written."""
    from vasomics.chain.segment.learned import TrainParams, train

    changes = {"iterations": iterations, "n_val": n_val, "validate_every": validate_every,
               "seed": seed, "threads": threads, "cldice_weight": cldice_weight,
               "val_flips": int(val_flips) if val_flips else None,
               "threshold_rule": threshold_rule, "thin_weight": thin_weight,
               "thin_width_px": thin_width_px, "lr": lr, "init": init}
    params = TrainParams(**{k: v for k, v in changes.items() if v is not None})
    command = "vasomics " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    card = train(dataset, data, output.with_suffix(".pt"), params,
                 progress=lambda m: click.echo(m, err=True), command=command)
    click.echo(f"{output}: validation Dice {card['validation_dice']} (threshold "
               f"{card['threshold']}, iteration {card['best_iteration']})")
