"""How a local run and the requests to stop it agree: one small state machine instead of flags
set and read in four places (a user's cancel, a cancel asked through the store by another process,
a lost lease, the process shutting down).

A stop request may interrupt the run's task only until the run starts recording its outcome
(`finish`): from then on nothing interrupts it, so the configuration, the run and the notification
always agree. When the task is interrupted, `leave_running` says whether the run must stay RUNNING
for another process (or a restart) to resume it, or be recorded as canceled.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class StopState(StrEnum):
    RUNNING = "running"
    CANCEL_REQUESTED = "cancel_requested"  # a user (here or through the store) asked to cancel
    LEASE_LOST = "lease_lost"  # another process took the run over: stop, record nothing


@dataclass(slots=True)
class RunStop:
    state: StopState = StopState.RUNNING
    finishing: bool = False  # recording its outcome: no longer interruptible

    def request_cancel(self) -> None:
        """A cancel was asked for; a lost lease stays lost (the new owner records the run)."""
        if self.state is StopState.RUNNING:
            self.state = StopState.CANCEL_REQUESTED

    def lose_lease(self) -> None:
        self.state = StopState.LEASE_LOST

    def finish(self) -> None:
        """The run records its outcome from now on."""
        self.finishing = True

    @property
    def interruptible(self) -> bool:
        """May a stop request cancel the run's task now?"""
        return not self.finishing

    def leave_running(self, shutting_down: bool) -> bool:
        """After an interruption: True to leave the run RUNNING for resumption (the lease was lost,
        or the process shuts down without a cancel having been asked), False to record it canceled."""
        if self.state is StopState.LEASE_LOST:
            return True
        return shutting_down and self.state is not StopState.CANCEL_REQUESTED
