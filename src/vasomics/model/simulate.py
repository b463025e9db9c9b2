"""A simulated multicentre vasomics cohort with known disease signal and centre effects,
for testing harmonization, leave-one-centre-out validation and the mixture of experts.

Generative model (all draws from one seeded generator):

* patient ``i`` of centre ``c``: latent disease grade ``g_i ~ N(0, 1)`` (the same disease
  mix in every centre), age ``~ N(50 + 4 c, 10)`` years (centres differ in age), sex
  ``~ Bernoulli(0.5)``;
* HVPG ``= 10 + 4.5 g_i + N(0, 2^2)`` mmHg; clinically significant portal hypertension
  (CSPH, the binary label) ``= HVPG >= 10``;
* true standardized feature ``z_ij = b_j g_i + 0.3 (age_i - 50) / 10 + e_ij`` with
  ``e_ij ~ N(0, 1 - b_j^2)``; ``b_j = signal`` for the informative share of the features
  of every family (sign alternating), 0 for the others;
* measured value ``x_ij = m_j + s_j (gamma_cj + delta_cj z_ij)``, with centre effects
  ``gamma_cj ~ N(0, additive^2)`` (additive, in feature SDs) and
  ``log delta_cj ~ N(0, multiplicative^2)`` (multiplicative); ``gamma = 0, delta = 1``
  without centre effects. ``m_j, s_j`` give each feature a plausible scale (positive mean,
  20 % coefficient of variation).

Features are named ``sim.<family>.<k>`` and belong to the five catalogue families, so the
mixture of experts gets one expert per family. The ComBat model is exactly this one
(additive and multiplicative centre effects on features whose mean depends on preserved
covariates), which is the situation harmonization is meant for.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vasomics.model.matrix import CATALOGUE_FAMILIES, FeatureMatrix


def simulate_cohort(n_per_centre: tuple[int, ...] = (150, 150, 150, 150),
                    features_per_family: int = 4, informative_share: float = 0.5,
                    signal: float = 0.45, centre_effects: bool = True, additive: float = 1.0,
                    multiplicative: float = 0.4, task: str = "classification",
                    seed: int = 0) -> FeatureMatrix:
    """Simulate the cohort described in the module docstring. Columns: the features, then
    ``age`` (years) and ``sex`` (0/1) as covariates; ``y`` is CSPH (classification) or HVPG
    in mmHg (regression); ``centre`` is ``C1..Cn``."""
    rng = np.random.default_rng(seed)
    n = int(sum(n_per_centre))
    centre = np.repeat([f"C{k + 1}" for k in range(len(n_per_centre))], n_per_centre)
    cidx = np.repeat(np.arange(len(n_per_centre)), n_per_centre)
    g = rng.normal(size=n)
    age = rng.normal(50 + 4 * cidx, 10)
    sex = rng.integers(0, 2, n).astype(float)
    hvpg = 10 + 4.5 * g + rng.normal(0, 2, n)
    names, fam, b = [], {}, []
    n_inf = int(round(informative_share * features_per_family))
    for family in CATALOGUE_FAMILIES:
        for k in range(features_per_family):
            name = f"sim.{family}.{k}"
            names.append(name)
            fam[name] = family
            b.append(signal * (1 if k % 2 == 0 else -1) if k < n_inf else 0.0)
    b = np.asarray(b)
    p = len(names)
    z = (g[:, None] * b[None, :] + 0.3 * ((age - 50) / 10)[:, None]
         + rng.normal(size=(n, p)) * np.sqrt(1 - b ** 2)[None, :])
    if centre_effects:
        gamma = rng.normal(0, additive, (len(n_per_centre), p))
        delta = np.exp(rng.normal(0, multiplicative, (len(n_per_centre), p)))
    else:
        gamma = np.zeros((len(n_per_centre), p))
        delta = np.ones((len(n_per_centre), p))
    m = rng.uniform(5, 50, p)
    s = 0.2 * m
    x = m + s * (gamma[cidx] + delta[cidx] * z)
    X = pd.DataFrame(x, columns=names)
    X["age"] = age
    X["sex"] = sex
    fam.update({"age": "demographic", "sex": "demographic"})
    y = (hvpg >= 10).astype(int) if task == "classification" else hvpg
    return FeatureMatrix(X=X, y=y, centre=centre, families=fam, task=task,
                         target="csph" if task == "classification" else "hvpg_mmhg",
                         source="simulated")


def simulate_phantom_cohort(n_per_centre: tuple[int, ...] = (60, 60, 60, 60),
                            centre_effects: bool = True, additive: float = 1.0,
                            multiplicative: float = 0.4, generations: int = 5,
                            spacing_mm: float = 1.0, seed: int = 0) -> FeatureMatrix:
    """A multicentre cohort of digital vessel trees (``vasomics.phantoms.trees.binary_tree``)
    whose geometry shifts with a latent disease grade, measured with the feature catalogue
    (tree scope) and distorted by centre effects.

    Per patient: grade ``g ~ N(0, 1)``, HVPG ``= 10 + 4.5 g + N(0, 2^2)`` mmHg, label
    ``HVPG >= 10``; tree root radius ``2.0 exp(0.08 g + 0.04 e1)`` mm (trunk dilatation),
    length ratio ``0.75 - 0.03 g + 0.015 e2`` (shorter branches), radius ratio
    ``2^(-1/3) exp(-0.03 g + 0.015 e3)`` (rarefaction), half branching angle
    ``35 + 4 g + 3 e4`` degrees, with ``e ~ N(0, 1)``; every extracted feature then gets 3 %
    multiplicative measurement noise. Features constant over the cohort (counts of a full
    binary tree) are dropped. Centre effects act like a scanner's offset and gain on each
    feature: ``x' = mean_j + sd_j (gamma_cj + delta_cj (x - mean_j) / sd_j)`` with ``gamma,
    delta`` drawn as in :func:`simulate_cohort`. Slow (about 1 s per tree): for benchmarks.
    """
    from vasomics.features.extract import extract_features
    from vasomics.phantoms.trees import binary_tree

    rng = np.random.default_rng(seed)
    n = int(sum(n_per_centre))
    centre = np.repeat([f"C{k + 1}" for k in range(len(n_per_centre))], n_per_centre)
    cidx = np.repeat(np.arange(len(n_per_centre)), n_per_centre)
    g = rng.normal(size=n)
    hvpg = 10 + 4.5 * g + rng.normal(0, 2, n)
    e = rng.normal(size=(n, 4))
    rows = []
    for i in range(n):
        ph = binary_tree(generations,
                         root_radius_mm=2.0 * np.exp(0.08 * g[i] + 0.04 * e[i, 0]),
                         length_ratio=float(np.clip(0.75 - 0.03 * g[i] + 0.015 * e[i, 1],
                                                    0.5, 0.95)),
                         radius_ratio=2 ** (-1 / 3) * np.exp(-0.03 * g[i] + 0.015 * e[i, 2]),
                         half_angle_deg=float(np.clip(35 + 4 * g[i] + 3 * e[i, 3], 10, 70)),
                         spacing=(spacing_mm,) * 3)
        rows.append(extract_features(ph.truth.graph).scope("tree"))
    X = pd.DataFrame(rows).reset_index(drop=True).astype(float)
    X = X.loc[:, X.nunique() > 1]
    X = X * np.exp(rng.normal(0, 0.03, X.shape))
    X = X.loc[:, X.std() > 1e-9 * X.abs().mean()]
    if centre_effects:
        p = X.shape[1]
        gamma = rng.normal(0, additive, (len(n_per_centre), p))
        delta = np.exp(rng.normal(0, multiplicative, (len(n_per_centre), p)))
        m, s = X.mean().to_numpy(), X.std().to_numpy()
        X[:] = m + s * (gamma[cidx] + delta[cidx] * (X.to_numpy() - m) / s)
    from vasomics.model.matrix import catalogue_families

    return FeatureMatrix(X=X, y=(hvpg >= 10).astype(int), centre=centre,
                         families=catalogue_families(X.columns), task="classification",
                         target="csph", source="simulated phantom trees")
