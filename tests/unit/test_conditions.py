"""Conditions keep their transition time until their status changes."""

import datetime

from imagegen.controller import conditions

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(minutes=5)


def ready(status: str, at: datetime.datetime, reason: str = "PoolsReady") -> list:  # type: ignore[type-arg]
    return conditions.set_condition(
        [],
        type="Ready",
        status=status,
        reason=reason,
        message="",
        generation=1,
        now=at,  # type: ignore[arg-type]
    )


def test_a_new_condition_is_stamped_now() -> None:
    assert ready("True", T0)[0].last_transition_time == T0


def test_same_status_keeps_the_transition_time_but_takes_the_new_reason() -> None:
    updated = conditions.set_condition(
        ready("True", T0),
        type="Ready",
        status="True",
        reason="Other",
        message="m",
        generation=2,
        now=T1,
    )
    assert updated[0].last_transition_time == T0
    assert (updated[0].reason, updated[0].observed_generation) == ("Other", 2)


def test_a_status_change_moves_the_transition_time() -> None:
    updated = conditions.set_condition(
        ready("True", T0),
        type="Ready",
        status="False",
        reason="RegionUnreachable",
        message="m",
        generation=1,
        now=T1,
    )
    assert updated[0].last_transition_time == T1


def test_other_conditions_are_kept_in_place() -> None:
    both = conditions.set_condition(
        ready("True", T0),
        type="Degraded",
        status="False",
        reason="AllRegionsReady",
        message="",
        generation=1,
        now=T0,
    )
    assert [c.type for c in both] == ["Ready", "Degraded"]
    assert conditions.find(both, "Degraded") is both[1]
