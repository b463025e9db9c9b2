"""``vasomics demo``: the main job on bundled or generated sample data, in one command.

``--kind ct`` (the default, what ``make demo`` runs) takes the whole CT chain through the
bundled real CT (the TotalSegmentator example CT, Apache-2.0, see chain/atlas/NOTICE.txt) and
prints the path of the HTML summary; ``--kind tree`` measures a generated phantom vessel tree
from its mask beside its analytic values (the measurement core alone, a few seconds).
"""

from __future__ import annotations

from pathlib import Path

import click


def run_ct_demo(outdir: Path) -> str:
    """Write the bundled CT into ``outdir`` (once), run the chain on it (QC verdicts do not stop
    the demo) and return the chain's one-line verdict and summary text."""
    from vasomics.chain.localize import load_atlas
    from vasomics.chain.run import run_chain
    from vasomics.io.atomic import ensure_writable_dir
    from vasomics.io.images import write_image

    ct_path = ensure_writable_dir(outdir) / "example_ct.nii.gz"
    if not ct_path.is_file():
        write_image(load_atlas().ct, ct_path)
    result, summary = run_chain(ct_path, outdir, force=True)
    phase = result.phase.phase if result.phase else "?"
    return f"{result.qc.summary()}; phase {phase}\n{summary}"


@click.command("demo")
@click.option("--kind", type=click.Choice(("ct", "tree")), default="ct", show_default=True,
              help="ct: the CT chain on the bundled real CT; tree: features of a phantom tree.")
@click.option("-o", "--outdir", type=click.Path(path_type=Path), default=Path("demo_output"),
              show_default=True, help="Output folder.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Phantom seed (--kind tree).")
def demo_command(kind: str, outdir: Path, seed: int) -> None:
    """Run vasomics on sample data and print where the results are."""
    if kind == "ct":
        click.echo(run_ct_demo(outdir))
    else:
        from vasomics.features.demo import run_demo

        click.echo(run_demo(outdir, seed=seed))
