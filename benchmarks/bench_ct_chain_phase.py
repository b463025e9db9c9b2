"""Benchmark: phase recognition accuracy and calibration on seeded liver CT phantoms.

Regions are measured in the phantoms' truth masks (the phase stage alone), or with
``--chain`` through the chain (:func:`vasomics.chain.run.characterize`: localized regions,
refinement-moved regions left out and imputed, as ``vasomics run`` does) on larger phantoms.
Prints accuracy, the multiclass Brier score and the expected calibration error (ECE, 10
equal-width confidence bins). Usage:

    python benchmarks/bench_ct_chain_phase.py [--per-phase 25] [--chain]
"""

from __future__ import annotations

import argparse

import numpy as np

from vasomics.chain.phase import PHASES, measure_regions, recognize_phase
from vasomics.chain.run import characterize
from vasomics.phantoms.liver_ct import LABELS, liver_ct_phantom


def expected_calibration_error(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Σ_b (n_b / N) |accuracy_b − mean confidence_b| over equal-width confidence bins."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-phase", type=int, default=25)
    ap.add_argument("--chain", action="store_true", help="localized regions (whole chain)")
    args = ap.parse_args()
    probs, labels = [], []
    rng = np.random.default_rng(2024)
    for i in range(args.per_phase * len(PHASES)):
        phase = PHASES[i % len(PHASES)]
        noise = float(rng.uniform(6, 30))
        if args.chain:
            ct, _ = liver_ct_phantom((64, 96, 96), phase=phase, seed=10_000 + i,
                                     noise_sd_hu=noise, z_extent_mm=240.0)
            res = characterize(ct).phase
        else:
            ct, truth = liver_ct_phantom((40, 64, 64), phase=phase, seed=10_000 + i,
                                         noise_sd_hu=noise)
            lab = truth.labels.array
            env = truth.labels.metadata["liver_envelope"]
            regions = {"aorta": lab == LABELS["aorta"], "liver": lab == LABELS["liver"],
                       "portal_vein": (lab == LABELS["portal"]) & ~env,
                       "ivc": lab == LABELS["ivc"]}
            res = recognize_phase(measure_regions(ct, regions))
        probs.append([res.probabilities[p] for p in PHASES])
        labels.append(PHASES.index(phase))
    probs, labels = np.array(probs), np.array(labels)
    pred = probs.argmax(1)
    onehot = np.eye(len(PHASES))[labels]
    print(f"n = {len(labels)} phantoms, noise SD 6-30 HU, regions "
          f"{'localized (whole chain)' if args.chain else 'from the truth masks'}")
    print(f"accuracy {np.mean(pred == labels):.3f}")
    print(f"Brier score {np.mean(np.sum((probs - onehot) ** 2, axis=1)):.4f}")
    print(f"ECE (10 bins) {expected_calibration_error(probs.max(1), pred == labels):.4f}")
    for k, phase in enumerate(PHASES):
        print(f"  {phase}: accuracy {np.mean(pred[labels == k] == k):.3f}")


if __name__ == "__main__":
    main()
