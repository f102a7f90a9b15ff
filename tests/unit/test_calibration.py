"""The calibration table and the decisions it drives, on synthetic distance distributions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from faceindex.errors import InputError, ModelError
from faceindex.search.scoring import Decider, in_words
from faceindex.vision.calibration import (
    Calibration,
    default_calibration,
    fit_calibration,
    load_calibration,
    worst_of,
)

pytestmark = pytest.mark.unit

RNG = np.random.default_rng(7)
IMPOSTOR = RNG.normal(0.85, 0.08, 200_000)  # different people: far apart
GENUINE = RNG.normal(0.38, 0.07, 5_000)  # same person: close


def synthetic() -> Calibration:
    return fit_calibration(
        IMPOSTOR, GENUINE, model="test-model@1", measured_on="synthetic normals", identities=100
    )


def test_fmr_and_tmr_follow_the_samples_where_data_is_plentiful() -> None:
    cal = synthetic()
    for d in (0.65, 0.75, 0.85):
        assert cal.fmr_at(d) == pytest.approx(float((d >= IMPOSTOR).mean()), rel=0.05)
    assert cal.tmr_at(0.38) == pytest.approx(0.5, abs=0.03)
    assert cal.fmr_at(float("inf")) == 1.0 and cal.tmr_at(float("inf")) == 1.0


def test_tail_is_extrapolated_conservatively_and_stays_monotone() -> None:
    cal = synthetic()
    fmr = np.array(cal.fmr)
    assert (np.diff(fmr) >= 0).all() and (fmr > 0).all()
    # A Gaussian tail falls faster than the fitted exponential: the table over-states it.
    true = 0.5 * math.erfc((0.85 - 0.4) / (0.08 * math.sqrt(2)))  # ~1e-8
    assert true < cal.fmr_at(0.4) < 1e-3
    assert cal.fmr_at(0.3) < cal.fmr_at(0.4)
    assert "log-linear" in cal.tail


def test_stranger_chance_is_one_minus_the_product() -> None:
    cal = synthetic()
    f = cal.fmr_at(0.55)
    assert cal.expected_strangers(0.55, 10_000) == pytest.approx(f * 10_000)
    assert cal.stranger_chance(0.55, 10_000) == pytest.approx(1 - (1 - f) ** 10_000, rel=1e-9)
    assert cal.stranger_chance(0.55, 0) == 0.0
    assert cal.stranger_chance(0.55, 10**9) == pytest.approx(1.0)


def test_distance_for_fmr_inverts_the_table() -> None:
    cal = synthetic()
    for target in (1e-2, 1e-4, 1e-7):
        d = cal.distance_for_fmr(target)
        assert cal.fmr_at(d) == pytest.approx(target, rel=0.05)


def test_round_trip_through_json(tmp_path: Path) -> None:
    cal = synthetic()
    path = tmp_path / "cal.json"
    cal.save(path)
    again = load_calibration(path)
    assert again.model == cal.model and again.impostor_pairs == len(IMPOSTOR)
    assert again.fmr_at(0.5) == pytest.approx(cal.fmr_at(0.5), rel=1e-4)
    bad = json.loads(path.read_text())
    bad["fmr"] = bad["fmr"][:-1]
    path.write_text(json.dumps(bad))
    with pytest.raises(InputError):
        load_calibration(path)


def test_too_few_impostor_pairs_are_refused() -> None:
    with pytest.raises(InputError, match="impostor pairs"):
        fit_calibration(IMPOSTOR[:50], GENUINE, model="m", measured_on="x", identities=3)


def test_a_model_without_a_calibration_says_how_to_make_one() -> None:
    with pytest.raises(ModelError, match="--calibrate"):
        default_calibration("no-such-model@9")


def test_the_dlib_model_ships_a_calibration() -> None:
    cal = default_calibration("dlib-resnet-v1+mirror@1")
    assert cal.metric == "l2" and cal.impostor_pairs > 10_000 and cal.identities > 50
    # dlib's own threshold 0.6 lets several in a hundred look-alike strangers through.
    assert 1e-3 < cal.fmr_at(0.6) < 0.3
    assert cal.fmr_at(0.4) < 1e-3 < cal.fmr_at(0.5)
    assert cal.tmr_at(0.6) > 0.8


def test_a_large_gallery_turns_a_match_into_a_possible() -> None:
    decider = Decider(synthetic(), match_bound=0.01, possible_strangers=10, possible_fmr=0.01)
    small, large = decider.assess(0.45, 1_000), decider.assess(0.45, 1_000_000)
    assert small.decision == "match" and small.stranger_chance < 0.01
    assert large.decision == "possible"
    assert large.expected_strangers == pytest.approx(1000 * small.expected_strangers)
    assert decider.decide(0.9, 1_000) == "no-match"  # a typical stranger
    assert decider.decide(0.7, 20) == "no-match"  # too common a distance to list


def test_a_stricter_bound_calls_fewer_matches() -> None:
    cal = synthetic()
    d = cal.distance_for_fmr(1e-5)  # chance ~0.01 at N = 1,000
    assert Decider(cal, match_bound=0.05).decide(d, 1000) == "match"
    assert Decider(cal, match_bound=0.001).decide(d, 1000) != "match"
    with pytest.raises(InputError):
        Decider(cal, match_bound=0.0)


def test_chance_in_words() -> None:
    assert (
        in_words(1 / 40)
        == "about 1 search in 40 of a gallery this size shows a stranger this close"
    )
    assert in_words(1 / 1234).startswith("about 1 search in 1,200 ")
    assert in_words(1e-9).startswith("fewer than 1 search in a million")
    assert in_words(0.8).startswith("most searches (80%)")
    assert in_words(0.9999).startswith("nearly every search of a gallery")


def test_a_poor_face_is_never_called_a_match() -> None:
    decider = Decider(synthetic(), match_quality=0.3)
    assert decider.decide(0.3, 100, quality=0.9) == "match"
    assert decider.decide(0.3, 100, quality=0.24) == "possible"


def test_worst_of_keeps_the_hardest_collection_at_every_distance() -> None:
    easy = synthetic()
    hard = fit_calibration(
        RNG.normal(0.70, 0.08, 20_000),  # look-alike strangers: much closer
        GENUINE,
        model="test-model@1",
        measured_on="look-alikes",
        identities=15,
    )
    both = worst_of([easy, hard], measured_on="both")
    for d in (0.3, 0.45, 0.6, 0.9):
        assert both.fmr_at(d) == pytest.approx(max(easy.fmr_at(d), hard.fmr_at(d)), rel=1e-6)
    assert both.fmr_at(0.45) > 10 * easy.fmr_at(0.45)
    assert both.impostor_pairs == easy.impostor_pairs + hard.impostor_pairs
    other = fit_calibration(IMPOSTOR, GENUINE, model="other@1", measured_on="x", identities=1)
    with pytest.raises(InputError):
        worst_of([easy, other], measured_on="mixed models")
