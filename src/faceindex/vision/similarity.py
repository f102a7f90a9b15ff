"""5-point similarity alignment: fit the landmarks onto a template (numpy), warp the chip (PIL).

Coordinates are pixel centres at integer positions (pixel (0, 0) covers [-0.5, 0.5]), the
convention the ArcFace reference points are written in. The fit is Umeyama's least-squares
similarity (rotation, uniform scale, translation; no reflection).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

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


def warp(rgb: np.ndarray | Image.Image, matrix: np.ndarray, size: int) -> np.ndarray:
    """The ``size`` x ``size`` chip whose pixel ``matrix @ (x, y, 1)`` is image pixel (x, y).

    Bilinear; chip pixels that fall outside the image are black. Pass a PIL image to warp
    several faces of one photo without converting it each time.
    """
    img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    (a, b, c), (d, e, f) = np.linalg.inv(full)[:2]
    # PIL puts pixel centres at +0.5 (corners on the integers): shift into and out of that.
    coeffs = (a, b, c + 0.5 - 0.5 * (a + b), d, e, f + 0.5 - 0.5 * (d + e))
    out = img.transform(
        (size, size), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR
    )
    return np.asarray(out)
