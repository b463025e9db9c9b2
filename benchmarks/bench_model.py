"""Benchmark: training + leave-one-centre-out validation of the mixture of experts on a
simulated multicentre cohort of 1,000 patients x 200 features (vasomics.model.simulate),
with the L1-logistic baseline in the same harness for comparison.

Prints wall and CPU time (the machine may be shared: CPU time / threads bounds the
unloaded wall time), peak RSS and pooled/per-centre held-out AUC. Target (issue 7): MoE
training + LOCO validation <= 60 s on 2 cores.

    python benchmarks/bench_model.py [--centres 5] [--harmonize] [--baseline]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from threadpoolctl import threadpool_limits

from vasomics.model import validate as V
from vasomics.model.metrics import auc
from vasomics.model.simulate import simulate_cohort
from vasomics.model.workflow import ModelParams, build_estimator


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--centres", type=int, default=5)
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--features-per-family", type=int, default=40)  # 5 x 40 = 200
    ap.add_argument("--harmonize", action="store_true")
    ap.add_argument("--baseline", action="store_true", help="also time the L1 baseline")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads per fit")
    args = ap.parse_args()
    sizes = tuple([args.patients // args.centres] * args.centres)
    fm = simulate_cohort(sizes, features_per_family=args.features_per_family, seed=0)
    n_feat = fm.X.shape[1]
    p = ModelParams(harmonize=args.harmonize, covariates=["age", "sex"])
    models = {"moe": build_estimator(p, fm.families)}
    if args.baseline:
        models["l1_logistic"] = V.l1_logistic()
    with threadpool_limits(args.threads):
        for name, est in models.items():
            t0, c0 = time.perf_counter(), time.process_time()
            X = V.model_input(fm, est)
            est.fit(X, fm.y)
            t_fit = time.perf_counter() - t0
            pred = V.held_out_predictions(est, fm, "loco")
            total = time.perf_counter() - t0
            cpu = time.process_time() - c0
            per = {c: round(auc(d.y.to_numpy(), d.score.to_numpy()), 3)
                   for c, d in pred.groupby("centre")}
            tag = " + ComBat" if V.uses_batch(est) else ""
            print(f"{name}{tag}: {len(fm.X)} patients x {n_feat} features, {args.centres} "
                  f"centres: train {t_fit:.1f} s, train + LOCO "
                  f"{total:.1f} s wall ({cpu:.1f} s CPU); pooled held-out AUC "
                  f"{auc(pred.y.to_numpy(), pred.score.to_numpy()):.3f}; per centre {per}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB; load average {np.round(__import__('os').getloadavg(), 1)}")


if __name__ == "__main__":
    main()
