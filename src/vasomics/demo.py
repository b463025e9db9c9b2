"""``vasomics demo``: the main job on bundled or generated sample data, in one command.

``--kind ct`` (the default, what ``make demo`` runs) takes the whole CT chain through the
bundled real CT (the TotalSegmentator example CT, Apache-2.0, see chain/atlas/NOTICE.txt) and
prints the path of the HTML summary. That CT shows no venous contrast in the liver, so its
trees are reported untraced; the demo then runs the chain on a generated portal venous CT
(:func:`vasomics.phantoms.liver_ct.liver_ct_phantom`, with the hepatic artery) whose trees
it traces and names, and prints the liver's and spleen's volumes and the trees' length and
naming against the generator's truth.
``--kind tree`` measures a generated phantom vessel tree from its mask beside its analytic
values (the measurement core alone, a few seconds).
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


#: The generated CT of the demo: 1.5 mm slices, 1.125 mm pixels (a clinical portal venous
#: scan, coarser in-plane so that the demo stays under a minute).
PHANTOM_SHAPE = (160, 320, 320)
PHANTOM_SEED = 612


def run_phantom_demo(outdir: Path, shape=PHANTOM_SHAPE, seed: int = PHANTOM_SEED) -> str:
    """Write a generated portal venous liver CT (with the hepatic artery) into ``outdir``, run
    the chain on it and return the verdict, the liver's and spleen's volumes, each venous
    tree's length and naming accuracy against the generator's truth, and the summary's
    path."""
    import numpy as np

    from vasomics.chain.run import run_chain
    from vasomics.io.atomic import ensure_writable_dir
    from vasomics.io.images import write_image
    from vasomics.phantoms.liver_ct import liver_ct_phantom
    from vasomics.phantoms.truth import liver_tree_truth, naming_scores

    ct, truth = liver_ct_phantom(shape, phase="portal_venous", seed=seed, z_extent_mm=240.0,
                                 hepatic_artery=True)
    ct_path = ensure_writable_dir(outdir) / "phantom_ct.nii.gz"
    # stored as scanners store HU: int16 (a float32 file of noise compresses poorly)
    write_image(ct.with_array(np.round(ct.array).astype(np.int16)), ct_path)
    result, summary = run_chain(ct_path, outdir, force=True)
    expected = liver_tree_truth(truth)
    lines = [f"generated portal venous CT (seed {seed}, truth known): {result.qc.summary()}; "
             f"phase {result.phase.phase if result.phase else '?'}"]
    for organ, fid in (("liver", "VX.A.T.LIVER_VOL"), ("spleen", "VX.A.T.SPLEEN_VOL")):
        got, want = result.features.value(fid), expected[(fid, "tree")]
        lines.append(f"  {organ}: {got:.0f} ml (truth {want:.0f} ml, "
                     f"{100 * (got - want) / want:+.1f} %)")
    for name, graph, true in (("portal", result.portal, truth.portal),
                              ("hepatic", result.hepatic, truth.hepatic)):
        scope = f"vessel:{name}_venous_tree"
        want = expected[("VX.A.V.TREE_LEN", scope)]
        if graph is None:
            lines.append(f"  {name} venous tree: not traced (truth {want:.0f} mm)")
            continue
        got = result.features.value("VX.A.V.TREE_LEN", scope)
        named = naming_scores(graph, true, 1.5 * max(ct.spacing))["accuracy"]
        lines.append(f"  {name} venous tree: {got:.0f} mm (truth {want:.0f} mm, "
                     f"{100 * (got - want) / want:+.0f} %), segments named right "
                     f"{100 * named:.0f} %")
    return "\n".join(lines + [str(summary)])


@click.command("demo")
@click.option("--kind", type=click.Choice(("ct", "tree")), default="ct", show_default=True,
              help="ct: the CT chain on the bundled real CT and a generated one; tree: "
                   "features of a phantom tree.")
@click.option("-o", "--outdir", type=click.Path(path_type=Path), default=Path("demo_output"),
              show_default=True, help="Output folder.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Phantom seed (--kind tree).")
def demo_command(kind: str, outdir: Path, seed: int) -> None:
    """Run vasomics on sample data and print where the results are."""
    if kind == "ct":
        click.echo(run_ct_demo(outdir))
        click.echo(run_phantom_demo(outdir / "generated_ct"))
    else:
        from vasomics.features.demo import run_demo

        click.echo(run_demo(outdir, seed=seed))
