"""Compiled (numba) hot loops of ULM: local maxima, radial symmetry, Gaussian fit.

The algorithms are documented in :mod:`.detect` and :mod:`.localize`; these kernels only
run them without temporaries, in parallel over frames or patches.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, inline="always")
def _is_max(img, f, i, j, v):
    # strict against neighbours before (raster order), non-strict after: one pixel per plateau
    return (v > img[f, i - 1, j - 1] and v > img[f, i - 1, j] and v > img[f, i - 1, j + 1]
            and v > img[f, i, j - 1] and v >= img[f, i, j + 1] and v >= img[f, i + 1, j - 1]
            and v >= img[f, i + 1, j] and v >= img[f, i + 1, j + 1])


@nb.njit(cache=True)
def _frame_values(img, f, border, thr, vbuf):
    """Values of the local maxima of frame ``f`` above ``thr`` (count returned)."""
    _, Z, X = img.shape
    n = 0
    for i in range(border, Z - border):
        for j in range(border, X - border):
            v = img[f, i, j]
            if v > thr and _is_max(img, f, i, j, v):
                vbuf[n] = v
                n += 1
    return n


@nb.njit(parallel=True, cache=True)
def local_maxima(img, border, thr, top_n):
    """Per frame, up to ``top_n`` strict local maxima (3×3) above ``thr[f]`` at least
    ``border`` (≥ 1) pixels from the edges, brightest first. Returns (frame, z, x, value).

    Pass 1 finds each frame's cut value (the ``top_n``-th largest maximum), pass 2 collects
    the maxima at or above it and sorts only those."""
    F, Z, X = img.shape
    cap = (Z - 2 * border) * (X - 2 * border)
    counts = np.zeros(F, np.int64)
    cut = np.empty(F, np.float32)
    for f in nb.prange(F):
        vb = np.empty(cap, np.float32)
        n = _frame_values(img, f, border, thr[f], vb)
        if n > top_n:
            cut[f] = np.partition(vb[:n], n - top_n)[n - top_n]
            counts[f] = top_n
        else:
            cut[f] = -np.inf
            counts[f] = n
    offsets = np.zeros(F + 1, np.int64)
    for f in range(F):
        offsets[f + 1] = offsets[f] + counts[f]
    total = offsets[F]
    fr = np.empty(total, np.int64)
    zz = np.empty(total, np.int64)
    xx = np.empty(total, np.int64)
    vv = np.empty(total, np.float32)
    for f in nb.prange(F):
        m = counts[f]
        zb = np.empty(m + 64, np.int64)
        xb = np.empty(m + 64, np.int64)
        vb = np.empty(m + 64, np.float32)
        n = 0
        for i in range(border, Z - border):
            for j in range(border, X - border):
                v = img[f, i, j]
                if v > thr[f] and v >= cut[f] and _is_max(img, f, i, j, v):
                    if n == zb.size:  # many ties at the cut value: grow
                        zb = np.concatenate((zb, np.empty(zb.size, np.int64)))
                        xb = np.concatenate((xb, np.empty(xb.size, np.int64)))
                        vb = np.concatenate((vb, np.empty(vb.size, np.float32)))
                    zb[n] = i
                    xb[n] = j
                    vb[n] = v
                    n += 1
        order = np.argsort(-vb[:n], kind="mergesort")
        o = offsets[f]
        for k in range(m):
            idx = order[k]
            fr[o + k] = f
            zz[o + k] = zb[idx]
            xx[o + k] = xb[idx]
            vv[o + k] = vb[idx]
    return fr, zz, xx, vv


@nb.njit(parallel=True, cache=True)
def radial_symmetry_kernel(p, out):
    """Parthasarathy radial-symmetry centre of each patch ``p[k]`` (n × n), offsets from the
    centre pixel written to ``out[k] = (dz, dx)``; see :func:`.localize.radial_symmetry`."""
    K, n, _ = p.shape
    h = n // 2
    for k in nb.prange(K):
        # pass 1: gradient-energy centroid
        tot = 0.0
        cz = 0.0
        cx = 0.0
        for i in range(n - 1):
            for j in range(n - 1):
                a, b = p[k, i, j], p[k, i, j + 1]
                c, d = p[k, i + 1, j], p[k, i + 1, j + 1]
                gz = 0.5 * ((c + d) - (a + b))
                gx = 0.5 * ((b + d) - (a + c))
                g2 = gz * gz + gx * gx
                tot += g2
                cz += g2 * (i + 0.5 - h)
                cx += g2 * (j + 0.5 - h)
        if tot <= 0.0:
            out[k, 0] = 0.0
            out[k, 1] = 0.0
            continue
        cz /= tot
        cx /= tot
        # pass 2: weighted least squares over the gradient lines
        a11 = 0.0
        a22 = 0.0
        a12 = 0.0
        b1 = 0.0
        b2 = 0.0
        for i in range(n - 1):
            qz = i + 0.5 - h
            for j in range(n - 1):
                qx = j + 0.5 - h
                a, b = p[k, i, j], p[k, i, j + 1]
                c, d = p[k, i + 1, j], p[k, i + 1, j + 1]
                gz = 0.5 * ((c + d) - (a + b))
                gx = 0.5 * ((b + d) - (a + c))
                g2 = gz * gz + gx * gx
                if g2 <= 0.0:
                    continue
                dist = np.sqrt((qz - cz) ** 2 + (qx - cx) ** 2)
                w = g2 / max(dist, 1e-3)
                pzz = w * (1.0 - gz * gz / g2)
                pxx = w * (1.0 - gx * gx / g2)
                pzx = -w * gz * gx / g2
                a11 += pzz
                a22 += pxx
                a12 += pzx
                b1 += pzz * qz + pzx * qx
                b2 += pzx * qz + pxx * qx
        det = a11 * a22 - a12 * a12
        if abs(det) <= 1e-12 * max(a11 * a22, 1e-30):
            out[k, 0] = 0.0
            out[k, 1] = 0.0
            continue
        out[k, 0] = min(max((a22 * b1 - a12 * b2) / det, -h), h)
        out[k, 1] = min(max((a11 * b2 - a12 * b1) / det, -h), h)


@nb.njit(cache=True)
def _solve6(H, g, x):
    """Solve H x = g (6 × 6) by Gaussian elimination with partial pivoting (H, g are
    overwritten); returns False when singular."""
    m = 6
    for c in range(m):
        piv = c
        for r in range(c + 1, m):
            if abs(H[r, c]) > abs(H[piv, c]):
                piv = r
        if abs(H[piv, c]) < 1e-300:
            return False
        if piv != c:
            for q in range(m):
                H[c, q], H[piv, q] = H[piv, q], H[c, q]
            g[c], g[piv] = g[piv], g[c]
        for r in range(c + 1, m):
            fct = H[r, c] / H[c, c]
            for q in range(c, m):
                H[r, q] -= fct * H[c, q]
            g[r] -= fct * g[c]
    for c in range(m - 1, -1, -1):
        s = g[c]
        for q in range(c + 1, m):
            s -= H[c, q] * x[q]
        x[c] = s / H[c, c]
    return True


@nb.njit(cache=True)
def _cost(p, k, t, n, h):
    s = 0.0
    for i in range(n):
        ez = (i - h - t[1]) ** 2
        for j in range(n):
            ex = (j - h - t[2]) ** 2
            r = t[0] * np.exp(-t[3] * ez - t[4] * ex) + t[5] - p[k, i, j]
            s += r * r
    return s


@nb.njit(parallel=True, cache=True)
def gaussian_fit_kernel(p, theta0, iterations, damping, out):
    """Levenberg–Marquardt fit of ``A·exp(−a(z−z0)² − b(x−x0)²) + B`` to each patch, from
    ``theta0[k] = (A, z0, x0, a, b, B)``; writes (z0, x0) to ``out[k]``."""
    K, n, _ = p.shape
    h = n // 2
    for k in nb.prange(K):
        t = theta0[k].copy()
        new = np.empty(6)
        H = np.empty((6, 6))
        g = np.empty(6)
        step = np.empty(6)
        J = np.empty(6)
        lam = damping
        cost = _cost(p, k, t, n, h)
        for _ in range(iterations):
            H[:] = 0.0
            g[:] = 0.0
            for i in range(n):
                dz = i - h - t[1]
                for j in range(n):
                    dx = j - h - t[2]
                    e = np.exp(-t[3] * dz * dz - t[4] * dx * dx)
                    a = t[0] * e
                    r = p[k, i, j] - (a + t[5])
                    J[0] = e
                    J[1] = 2.0 * a * t[3] * dz
                    J[2] = 2.0 * a * t[4] * dx
                    J[3] = -a * dz * dz
                    J[4] = -a * dx * dx
                    J[5] = 1.0
                    for u in range(6):
                        g[u] += J[u] * r
                        for v in range(u, 6):
                            H[u, v] += J[u] * J[v]
            for u in range(6):
                for v in range(u):
                    H[u, v] = H[v, u]
            for u in range(6):
                H[u, u] += lam * H[u, u] + 1e-9
            if not _solve6(H, g, step):
                break
            for u in range(6):
                new[u] = t[u] + step[u]
            new[3] = max(new[3], 1e-3)
            new[4] = max(new[4], 1e-3)
            c_new = _cost(p, k, new, n, h)
            if c_new < cost:
                t[:] = new
                cost = c_new
                lam *= 0.3
            else:
                lam *= 10.0
        out[k, 0] = min(max(t[1], -h), h)
        out[k, 1] = min(max(t[2], -h), h)
