"""5-point similarity alignment, pure numpy: fit the landmarks onto a template, warp the chip.

Coordinates are pixel centres at integer positions (pixel (0, 0) covers [-0.5, 0.5]), the
convention the ArcFace reference points are written in. The fit is Umeyama's least-squares
similarity (rotation, uniform scale, translation; no reflection).
"""

from __future__ import annotations

import numpy as np

__all__ = ["ARCFACE_112", "apply", "estimate_similarity", "scaled_template", "warp"]

# The five reference points ArcFace-class recognisers are trained on, for a 112x112 chip:
# left eye, right eye, nose tip, left mouth corner, right mouth corner (as the viewer sees).
ARCFACE_112: tuple[tuple[float, float], ...] = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


def scaled_template(
    template: tuple[tuple[float, float], ...], size: int, base: int = 112
) -> np.ndarray:
    """A template written for ``base``-pixel chips, for ``size``-pixel chips."""
    return np.asarray(template, dtype=np.float64) * (size / base)


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 matrix ``[sR | t]`` minimising ``sum |dst_i - (s R src_i + t)|^2``.

    Umeyama (1991), "Least-squares estimation of transformation parameters between two
    point patterns", with the determinant sign fix that keeps R a rotation.
    """
    p = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    q = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if len(p) != len(q) or len(p) < 2:
        raise ValueError(f"need matching point sets of 2 or more, got {len(p)} and {len(q)}")
    mu_p, mu_q = p.mean(0), q.mean(0)
    pc, qc = p - mu_p, q - mu_q
    var_p = float((pc * pc).sum() / len(p))
    if var_p < 1e-12:
        raise ValueError("the source points all coincide")
    cov = qc.T @ pc / len(p)
    u, sing, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = float((sing * d).sum() / var_p)
    out = np.empty((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_q - scale * rot @ mu_p
    return out


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (n, 2) mapped by a 2x3 affine matrix."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def warp(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` chip whose pixel ``matrix @ (x, y, 1)`` is image pixel (x, y).

    Bilinear; chip pixels that fall outside the image are black.
    """
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    h, w = rgb.shape[:2]
    img = rgb.reshape(h, w, -1).astype(np.float32)
    x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    out = np.zeros((size, size, img.shape[2]), dtype=np.float32)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            inside = ((xi >= 0) & (xi < w) & (yi >= 0) & (yi < h))[..., None]
            vals = img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
            out += np.where(inside, vals, 0.0) * wx * wy
    chip = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return chip.reshape(size, size, *rgb.shape[2:]) if rgb.ndim == 3 else chip[..., 0]
