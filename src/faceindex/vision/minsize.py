"""Whether an image has room for a face the detectors would keep.

A face is about as wide as it is tall, and faces under ``min_face_size`` pixels are dropped,
so an image whose short side is under that holds no face we would index. Detection runs on
a copy no longer than ``detect_max_side``, so a long strip shrinks across its short side
too. Such images are answered "no face" without calling dlib: its CNN fails on inputs a few
pixels wide with an internal assertion naming its build paths, and on some it corrupts the
heap and aborts the process (seen with 2x2 and 3x3 inputs).
"""

from __future__ import annotations

__all__ = ["too_small_for_faces"]


def too_small_for_faces(
    shape: tuple[int, ...], *, min_face_size: int, detect_max_side: int
) -> str | None:
    """Why an image of ``shape`` (H, W, ...) can hold no face, or None when it can."""
    h, w = int(shape[0]), int(shape[1])
    smallest = max(min_face_size, 1)
    if min(h, w) < smallest:
        return f"{w}x{h} is smaller than the smallest face indexed ({smallest} px)"
    longest = max(h, w)
    if 0 < detect_max_side < longest and min(h, w) * detect_max_side / longest < smallest:
        return (
            f"{w}x{h} is a strip: shrunk to {detect_max_side} px for detection it is "
            f"narrower than the smallest face indexed ({smallest} px)"
        )
    return None
