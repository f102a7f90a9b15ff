"""Draw a small sample collection for `make demo` from images shipped in scikit-image."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance
from skimage import data


def main(out: Path, probe: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    astronaut = Image.fromarray(data.astronaut())
    camera = Image.fromarray(np.stack([data.camera()] * 3, axis=2))
    astronaut.save(out / "astronaut.jpg", quality=92)
    astronaut.resize((300, 300)).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
        out / "astronaut-small-mirrored.jpg", quality=85
    )
    ImageEnhance.Brightness(astronaut).enhance(0.6).save(out / "astronaut-dark.png")
    camera.save(out / "cameraman.jpg", quality=92)
    astronaut.rotate(10, expand=True).save(probe, quality=80)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
