"""The stop handshake of a local run (bulk/full_sync/stop.py), transition by transition."""

from __future__ import annotations

import pytest

from bulk.full_sync.stop import RunStop, StopState


def test_a_running_run_is_interruptible_until_it_finishes() -> None:
    stop = RunStop()
    assert stop.interruptible
    stop.finish()
    assert not stop.interruptible
    stop.request_cancel()  # too late to interrupt: the outcome is being recorded
    assert not stop.interruptible


@pytest.mark.parametrize("shutting_down", [False, True])
def test_a_cancelled_run_is_recorded_canceled_even_during_shutdown(shutting_down: bool) -> None:
    stop = RunStop()
    stop.request_cancel()
    assert stop.state is StopState.CANCEL_REQUESTED
    assert not stop.leave_running(shutting_down)


def test_a_shutdown_without_a_cancel_leaves_the_run_for_resumption() -> None:
    assert RunStop().leave_running(shutting_down=True)
    assert not RunStop().leave_running(shutting_down=False)  # canceled in Shopify: recorded canceled


@pytest.mark.parametrize("cancel_first", [False, True])
def test_a_lost_lease_always_leaves_the_run_to_its_new_owner(cancel_first: bool) -> None:
    stop = RunStop()
    if cancel_first:
        stop.request_cancel()
    stop.lose_lease()
    stop.request_cancel()
    assert stop.state is StopState.LEASE_LOST
    assert stop.leave_running(shutting_down=False) and stop.leave_running(shutting_down=True)
