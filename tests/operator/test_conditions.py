from datetime import timedelta

from cast_core import conditions as cond
from cast_core.model import format_time
from tests.operator.conftest import START


def test_new_condition_is_stamped() -> None:
    out = cond.set_condition(
        [], cond.Condition("Ready", "True", "Active", "ok"), observed_generation=3, now=START
    )
    assert out == [
        {
            "type": "Ready",
            "status": "True",
            "observedGeneration": 3,
            "lastTransitionTime": format_time(START),
            "reason": "Active",
            "message": "ok",
        }
    ]


def test_unchanged_status_keeps_last_transition_time_and_stamps_generation() -> None:
    first = cond.set_condition(
        [], cond.Condition("Ready", "True", "Active"), observed_generation=1, now=START
    )
    later = START + timedelta(hours=2)
    second = cond.set_condition(
        first,
        cond.Condition("Ready", "True", "Active", "new text"),
        observed_generation=2,
        now=later,
    )
    assert second[0]["lastTransitionTime"] == format_time(START)
    assert second[0]["observedGeneration"] == 2
    assert second[0]["message"] == "new text"


def test_flip_moves_last_transition_time() -> None:
    first = cond.set_condition(
        [], cond.Condition("Ready", "True", "Active"), observed_generation=1, now=START
    )
    later = START + timedelta(minutes=5)
    second = cond.set_condition(
        first, cond.Condition("Ready", "False", "Expired"), observed_generation=1, now=later
    )
    assert second[0]["lastTransitionTime"] == format_time(later)
    assert second[0]["reason"] == "Expired"


def test_other_conditions_are_kept_in_place() -> None:
    foreign = {"type": "Audited", "status": "True", "reason": "Done", "message": ""}
    out = cond.set_conditions(
        [foreign],
        [cond.Condition("Ready", "True", "Active"), cond.Condition("Synced", "True", "Synced")],
        observed_generation=1,
        now=START,
    )
    assert [c["type"] for c in out] == ["Audited", "Ready", "Synced"]
    assert out[0] == foreign
    assert cond.is_true(out, "Synced")
    assert not cond.is_true(out, "Expired")
