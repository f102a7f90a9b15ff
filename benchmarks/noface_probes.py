"""The two no-face probes of issue 9 (item 5), generated: nothing here is downloaded or kept.

* ``huge_blank_png()``: a valid 7700x7700 PNG (59 MP, under the 60 MP limit) of a smooth
  gradient, a few tens of KB on the wire.
* ``plain_photo()``: a 1600x1200 JPEG of a real scene with no face in it (scikit-image's
  coffee cup, enlarged).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

__all__ = ["huge_blank_png", "plain_photo"]


def huge_blank_png(side: int = 7700) -> bytes:
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    grey = ((ramp[:, None] + ramp[None, :]) / 2).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(grey).convert("RGB").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def plain_photo(size: tuple[int, int] = (1600, 1200)) -> bytes:
    from skimage import data

    scene = Image.fromarray(np.asarray(data.coffee())).resize(size, Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    scene.save(buf, format="JPEG", quality=90)
    return buf.getvalue()
