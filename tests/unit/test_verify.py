"""1:1 verification without a model: which face is compared, the distance, the bands at
N = 1 with the quality gate, and the one schema the CLI and the HTTP API share."""

from __future__ import annotations

import numpy as np
import pytest

from faceindex.errors import InputError, NoFaceError
from faceindex.search.case_result import verification_dict
from faceindex.search.scoring import Decider, pair_words
from faceindex.search.verify import compare_faces
from faceindex.server.schemas_casework import FaceVerificationOut, VerifiedFaceOut
from faceindex.types import BBox, DetectedFace, FaceQuality
from faceindex.vision.calibration import default_calibration

pytestmark = pytest.mark.unit

CAL = default_calibration("dlib-resnet-v1+mirror@1")


def face(vec: np.ndarray, side: int = 100, quality: float = 0.9) -> DetectedFace:
    return DetectedFace(
        bbox=BBox(0, 0, side, side),
        landmarks=(),
        detector="test",
        detector_score=1.0,
        quality=FaceQuality(size=side, sharpness=100.0, pose=0.0, score=quality),
        embedding=vec.astype(np.float32),
        thumbnail=b"",
    )


def at(distance: float) -> tuple[np.ndarray, np.ndarray]:
    a = np.zeros(128, dtype=np.float32)
    b = a.copy()
    b[0] = distance
    return a, b


def decider(**kw: float) -> Decider:
    return Decider(CAL, **kw)


def test_a_close_pair_is_the_same_person_with_n_equal_one() -> None:
    a, b = at(0.30)
    v = compare_faces([face(a)], [face(b)], decider())
    assert v.distance == pytest.approx(0.30, abs=1e-4)
    assert v.fmr == pytest.approx(CAL.fmr_at(0.30), rel=1e-3)  # N = 1: chance == fmr
    assert v.fmr < 0.01 and v.decision == "match" and v.same_person
    assert v.tmr == pytest.approx(CAL.tmr_at(0.30), abs=1e-4)


def test_a_far_pair_is_different_people() -> None:
    a, b = at(0.9)
    v = compare_faces([face(a)], [face(b)], decider())
    assert v.decision == "no-match" and not v.same_person


def test_between_the_bounds_is_possible_not_the_same_person() -> None:
    d = CAL.distance_for_fmr(0.02)  # above the 0.01 match bound, below possible_fmr 0.05
    a, b = at(d)
    v = compare_faces([face(a)], [face(b)], decider())
    assert v.decision == "possible" and not v.same_person
    # a looser per-comparison bound makes the same pair a match
    assert compare_faces([face(a)], [face(b)], decider(match_bound=0.05)).same_person


def test_a_low_quality_face_is_never_called_the_same_person() -> None:
    a, b = at(0.30)
    v = compare_faces([face(a)], [face(b, quality=0.2)], decider(match_quality=0.5))
    assert v.decision == "possible"
    assert "below 0.50" in v.faces[1].warnings[0] and v.faces[0].warnings == ()
    body = verification_dict(v, case_reference="C", purpose="p")
    assert "low quality" in str(body["meaning"])


def test_the_largest_face_is_compared_unless_one_is_chosen() -> None:
    a, b = at(0.9)
    small, large = face(b, side=40), face(a, side=200)
    v = compare_faces([face(a)], [small, large], decider())
    assert v.faces[1].chosen == 2 and v.faces[1].faces_found == 2 and v.distance == 0
    assert "2 faces in this photo: face 2 was compared" in v.faces[1].warnings
    v = compare_faces([face(a)], [small, large], decider(), face_b=1)
    assert v.faces[1].chosen == 1 and v.distance == pytest.approx(0.9, abs=1e-4)


def test_a_missing_or_wrong_face_is_refused_naming_the_photo() -> None:
    a, _ = at(0)
    with pytest.raises(NoFaceError, match="photo B"):
        compare_faces([face(a)], [], decider())
    with pytest.raises(InputError, match="photo A has 1 face"):
        compare_faces([face(a)], [face(a)], decider(), face_a=3)


def test_the_dict_is_the_http_model_field_for_field() -> None:
    a, b = at(0.30)
    v = compare_faces([face(a)], [face(b)], decider())
    body = verification_dict(v, case_reference="C-1", purpose="check")
    model = FaceVerificationOut.model_validate(body)  # extra="forbid"
    assert model.model_dump() == body
    assert set(body["faces"][0]) == set(VerifiedFaceOut.model_fields)  # type: ignore[index]
    assert body["fmr_words"] == pair_words(v.fmr)
    assert str(body["fmr_words"]).startswith("about 1 pair in ")
    assert str(body["meaning"]).startswith("The same person:")
    assert "1 comparison in 100" in str(body["meaning"])


@pytest.mark.parametrize(
    ("fmr", "words"),
    [
        (0.0005, "about 1 pair in 2,000 of different people is this close"),
        (1e-8, "fewer than 1 pair in a million of different people is this close"),
        (0.7, "most pairs of different people (70%) are this close"),
    ],
)
def test_pair_words(fmr: float, words: str) -> None:
    assert pair_words(fmr) == words
