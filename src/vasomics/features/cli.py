"""``vasomics features``: mask → feature table and companions."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("features")
@click.argument("mask", type=click.Path(path_type=Path))
@click.option("--image", type=click.Path(path_type=Path), default=None,
              help="Intensity image on the mask's grid (adds intensity features).")
@click.option("--region", type=click.Path(path_type=Path), default=None,
              help="Region mask on the mask's grid (adds volume fraction, length density).")
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=None,
              help="YAML parameter file (sections skeleton, graph, features).")
@click.option("--spacing", default=None, metavar="S[,S[,S]]",
              help="Voxel size in mm per NumPy axis (z,y,x or y,x) overriding the files' own, "
              "for PNG/TIFF masks that store none (else 1 mm is assumed, with a warning).")
@click.option("--frame", type=click.Choice(["LPS", "RAS"]), default=None,
              help="Frame of a centerline file's points (default: its SPACE tag, else LPS; "
              "VMTK writes RAS). Matters only with --image or --region.")
@click.option("-o", "--outdir", type=click.Path(path_type=Path), required=True,
              help="Output folder (created; files of the same name are replaced).")
def features_command(mask: Path, image: Path | None, region: Path | None,
                     params_path: Path | None, spacing: str | None, frame: str | None,
                     outdir: Path) -> None:
    """Measure every catalogue feature of the vessel MASK and write the table (Parquet, CSV),
    its data dictionary, the graph (VTP, JSON), the parameters used and provenance.

    MASK may also be a centerline or graph file (.vtp from VMTK, 3D Slicer, TubeTK or
    vasomics; .json from vasomics): the centerline features are measured on it (VMTK's
    paths from the inlet to each outlet are merged into one tree), the mask features left
    out."""
    from vasomics.api import run_features

    result = run_features(mask, outdir, image=image, region=region, params=params_path,
                          spacing=_parse_spacing(spacing), frame=frame)
    click.echo(f"{len(result.table)} feature values ({result.graph.n_segments} segments) "
               f"written to {outdir}")


def _parse_spacing(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.replace(" ", ",").split(",") if v)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of numbers",
                                 param_hint="--spacing") from None
    if len(values) not in (2, 3):
        raise click.BadParameter("give 2 or 3 values (mm per NumPy axis)",
                                 param_hint="--spacing")
    return values
