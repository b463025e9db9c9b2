"""``vasomics us doppler|ulm|vfi INPUT -o OUTDIR``: ultrasound micro-flow imaging from IQ files.

Every command reads an IQ file (:mod:`vasomics.ultrasound.data`), runs its chain with the
parameters of an optional YAML file (sections ``svd``, ``ulm``, ``vfi``), and writes maps as
NIfTI (physical pixel size) and PNG, the parameters used (``params.yaml``) and a provenance
record (``provenance.json``) into OUTDIR, atomically (nothing partial on failure).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np
from pydantic import BaseModel, ConfigDict
from rich.progress import Progress

from vasomics.image import Image
from vasomics.io.atomic import atomic_file, staged_output_dir
from vasomics.params import dump_params_yaml, read_yaml_mapping, validate_params
from vasomics.provenance import provenance_record
from vasomics.ultrasound.clutter import SVDParams
from vasomics.ultrasound.ulm.pipeline import ULMParams
from vasomics.ultrasound.vfi import VFIParams


class USParams(BaseModel):
    """All ultrasound sections of a parameter file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    svd: SVDParams = SVDParams()
    ulm: ULMParams = ULMParams()
    vfi: VFIParams = VFIParams()


def _params(path: str | None, contrast_free: bool = False) -> USParams:
    data = read_yaml_mapping(path) if path else {}
    if contrast_free:
        data = {**data, "ulm": ULMParams.contrast_free(**data.get("ulm", {})).model_dump()}
    return validate_params(USParams, data, path)


def _write_png(array: np.ndarray, path: Path, cmap: str = "gray", vmin=None, vmax=None) -> None:
    from PIL import Image as PILImage

    a = np.nan_to_num(np.asarray(array, float))
    lo = np.percentile(a, 1) if vmin is None else vmin
    hi = np.percentile(a, 99.9) if vmax is None else vmax
    u = np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1)
    if cmap == "diverging":  # blue (negative) - black - red (positive)
        rgb = np.stack([np.clip(2 * u - 1, 0, 1), np.zeros_like(u), np.clip(1 - 2 * u, 0, 1)], -1)
    elif cmap == "hot":
        rgb = np.stack([np.clip(3 * u, 0, 1), np.clip(3 * u - 1, 0, 1), np.clip(3 * u - 2, 0, 1)],
                       -1)
    else:
        rgb = np.repeat(u[..., None], 3, -1)
    with atomic_file(path) as tmp:
        PILImage.fromarray((rgb * 255).astype(np.uint8)).save(tmp, format="PNG")


def _write_nifti(array: np.ndarray, spacing: tuple[float, float], path: Path) -> None:
    from vasomics.io.images import write_image

    write_image(Image(np.asarray(array, np.float32), spacing=spacing, modality="US"), path)


def _finish(out: Path, params: USParams, inputs: dict, seconds: dict, summary: dict) -> None:
    (out / "params.yaml").write_text(dump_params_yaml(params), encoding="utf-8")
    record = provenance_record(params, inputs, seconds)
    record["summary"] = {k: _json_safe(v) for k, v in summary.items()}
    (out / "provenance.json").write_text(json.dumps(record, indent=2, allow_nan=False),
                                         encoding="utf-8")


def _json_safe(value):
    """Plain JSON: numpy scalars to Python, NaN/inf to null, recursively."""
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    return value


@click.group(name="us")
def us() -> None:
    """Ultrasound micro-flow imaging: power/colour Doppler, ULM, vector flow."""


@us.command()
@click.argument("input_path", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False))
@click.option("-p", "--params", "params_path", type=click.Path(exists=True, dir_okay=False))
def doppler(input_path: str, outdir: str, params_path: str | None) -> None:
    """SVD-filtered power Doppler (and colour Doppler when f0 is known)."""
    from vasomics.ultrasound.clutter import svd_filter
    from vasomics.ultrasound.data import read_iq
    from vasomics.ultrasound.doppler import color_doppler, power_doppler

    params = _params(params_path)
    with Progress(transient=True) as bar:
        task = bar.add_task("doppler", total=3)
        ens = read_iq(input_path)
        bar.advance(task)
        t0 = time.perf_counter()
        blood, th = svd_filter(ens.iq, params.svd, return_thresholds=True)
        t1 = time.perf_counter()
        bar.advance(task)
        pd = power_doppler(blood)
        # colour Doppler needs the centre frequency: without it, none from an earlier run
        with staged_output_dir(outdir, supersedes=("color_doppler_m_s.nii.gz",
                                                   "color_doppler.png")) as out:
            _write_nifti(pd, ens.pixel_size_mm, out / "power_doppler.nii.gz")
            _write_png(10 * np.log10(pd / pd.max() + 1e-12), out / "power_doppler.png",
                       "hot", -35, 0)
            summary = {"svd_thresholds": th}
            if ens.center_frequency_hz:
                cd = color_doppler(blood, ens.frame_rate_hz, ens.center_frequency_hz,
                                   ens.sound_speed_m_s, (3, 3))
                _write_nifti(cd, ens.pixel_size_mm, out / "color_doppler_m_s.nii.gz")
                _write_png(cd, out / "color_doppler.png", "diverging", -np.abs(cd).max(),
                           np.abs(cd).max())
            _finish(out, params, {"iq": input_path}, {"svd": t1 - t0}, summary)
        bar.advance(task)
    click.echo(f"power Doppler written to {outdir}")


@us.command()
@click.argument("input_path", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False))
@click.option("-p", "--params", "params_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--contrast-free", is_flag=True, help="Erythrocyte-speckle defaults (SURE).")
@click.option("--block-frames", default=1000, show_default=True,
              help="Frames per SVD/ULM block.")
def ulm(input_path: str, outdir: str, params_path: str | None, contrast_free: bool,
        block_frames: int) -> None:
    """Ultrasound localization microscopy: density, direction and velocity maps."""
    from vasomics.ultrasound.clutter import svd_filter
    from vasomics.ultrasound.data import read_iq
    from vasomics.ultrasound.metrics import frc_tracks, saturation_curve
    from vasomics.ultrasound.ulm.pipeline import localize_stack
    from vasomics.ultrasound.ulm.render import render_tracks
    from vasomics.ultrasound.ulm.track import link, track_velocity

    params = _params(params_path, contrast_free)
    ens = read_iq(input_path)
    starts = list(range(0, ens.n_frames, block_frames))
    locs = []
    t0 = time.perf_counter()
    with Progress(transient=True) as bar:
        task = bar.add_task("ULM blocks", total=len(starts))
        for s in starts:
            block = ens.iq[s:s + block_frames]
            if block.shape[0] >= 8:
                f, z, x, _ = localize_stack(svd_filter(block, params.svd), params.ulm)
                locs.append((f + s, z, x))
            bar.advance(task)
    frame, z, x = (np.concatenate(a) for a in zip(*locs, strict=True)) if locs else (
        np.empty(0, int), np.empty(0), np.empty(0))
    u = params.ulm
    track = link(frame, z, x, u.max_linking_distance, u.max_gap, u.min_track_length)
    maps = render_tracks(track, frame, z, x, ens.frame_shape, u.scale, ens.pixel_size_mm)
    t1 = time.perf_counter()
    v = track_velocity(track, frame, z, x)
    dz, dx = ens.pixel_size_mm
    sr = (dz / u.scale, dx / u.scale)
    vel_mm_s = maps.velocity * ens.frame_rate_hz
    with staged_output_dir(outdir) as out:
        _write_nifti(maps.density, sr, out / "density.nii.gz")
        _write_nifti(maps.direction_coded, sr, out / "direction_density.nii.gz")
        _write_nifti(vel_mm_s, sr, out / "velocity_mm_s.nii.gz")
        _write_png(np.sqrt(maps.density), out / "density.png", "hot", 0)
        dc = np.sign(maps.direction_coded) * np.sqrt(np.abs(maps.direction_coded))
        _write_png(dc, out / "direction_density.png", "diverging", -dc.max(), dc.max())
        _write_png(vel_mm_s, out / "velocity.png", "hot", 0)
        with open(out / "localizations.csv", "w", encoding="utf-8") as fh:
            fh.write("frame,z_mm,x_mm,track,vz_mm_s,vx_mm_s\n")
            rows = np.c_[frame, ens.origin_mm[0] + z * dz, ens.origin_mm[1] + x * dx, track,
                         v[:, 0] * dz * ens.frame_rate_hz, v[:, 1] * dx * ens.frame_rate_hz]
            np.savetxt(fh, rows, delimiter=",", fmt=["%d", "%.5f", "%.5f", "%d", "%.4g", "%.4g"])
        steps, frac = saturation_curve(frame, z, x, ens.frame_shape, u.scale)
        np.savetxt(out / "saturation.csv", np.c_[steps, frac], delimiter=",", fmt="%.6g",
                   header="frames,fraction_of_final_pixels", comments="")
        kept = track[track >= 0]
        _finish(out, params, {"iq": input_path}, {"ulm": t1 - t0},
                {"localizations": int(frame.size),
                 "tracks": int(np.unique(kept).size),
                 "frc_resolution_mm": frc_tracks(track, frame, z, x, ens.frame_shape, u.scale,
                                                 float(np.mean(ens.pixel_size_mm)))})
    click.echo(f"ULM maps written to {outdir} ({frame.size} localizations)")


@us.command()
@click.argument("input_path", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False))
@click.option("-p", "--params", "params_path", type=click.Path(exists=True, dir_okay=False))
def vfi(input_path: str, outdir: str, params_path: str | None) -> None:
    """Vector flow imaging from a steered acquisition: velocity, wall shear, vorticity."""
    from vasomics.ultrasound.clutter import svd_filter
    from vasomics.ultrasound.data import read_steered_iq
    from vasomics.ultrasound.vfi import (
        flow_dispersion_index,
        vector_velocity,
        vorticity,
        wall_shear,
    )

    params = _params(params_path)
    iq, ens, angles = read_steered_iq(input_path)
    if ens.center_frequency_hz is None:
        from vasomics.errors import InputError

        raise InputError("vector flow needs center_frequency_hz (or wavelength_mm)", input_path)
    t0 = time.perf_counter()
    with Progress(transient=True) as bar:
        task = bar.add_task("clutter filter", total=len(iq))
        blood = []
        for a in iq:
            blood.append(svd_filter(a, params.svd))
            bar.advance(task)
    f = vector_velocity(np.stack(blood), ens.pixel_size_mm, ens.frame_rate_hz,
                        ens.center_frequency_hz, angles, ens.sound_speed_m_s, params.vfi)
    ws = wall_shear(f, ens.pixel_size_mm, params.vfi)
    w = vorticity(f.vz, f.vx, ens.pixel_size_mm)
    fdi = flow_dispersion_index(f.vz, f.vx, f.mask, params.vfi.dispersion_window)
    t1 = time.perf_counter()
    ps = ens.pixel_size_mm
    with staged_output_dir(outdir) as out:
        for name, arr in (("vz_m_s", f.vz), ("vx_m_s", f.vx), ("sd_vz_m_s", f.sd_z),
                          ("sd_vx_m_s", f.sd_x), ("vorticity_1_s", w),
                          ("dispersion_index", fdi), ("blood_mask", f.mask)):
            _write_nifti(np.where(f.mask, arr, 0), ps, out / f"{name}.nii.gz")
        _write_png(np.where(f.mask, f.speed, 0), out / "speed.png", "hot", 0)
        with open(out / "wall_shear.csv", "w", encoding="utf-8") as fh:
            fh.write("z_mm,x_mm,shear_rate_1_s,shear_stress_pa\n")
            np.savetxt(fh, np.c_[ens.origin_mm[0] + ws.z * ps[0], ens.origin_mm[1] + ws.x * ps[1],
                                 ws.shear_rate, ws.shear_stress], delimiter=",", fmt="%.5g")
        _finish(out, params, {"iq": input_path}, {"vfi": t1 - t0},
                {"median_wall_shear_rate_1_s": ws.median_shear_rate,
                 "wavevectors_rad_mm": f.wavevectors.tolist()})
    click.echo(f"vector flow maps written to {outdir}")
