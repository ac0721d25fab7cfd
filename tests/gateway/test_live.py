"""Progress pacing (pure): the Coalescer and the staleness rule for store re-reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from catalog_store.models import RunStatus, SyncRun
from gateway.live import Coalescer, is_behind

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(**changes: object) -> SyncRun:
    base = SyncRun(id="r1", shop_domain="demo.myshopify.com", phase="ingesting", started_at=T0)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_first_snapshot_goes_out_at_once() -> None:
    c = Coalescer(0.2)
    first = run(items_written=1)
    assert c.offer(first, 100.0) is first


def test_changes_are_paced_and_the_newest_held_snapshot_is_sent_when_due() -> None:
    c = Coalescer(0.2)
    c.offer(run(items_written=1), 100.0)
    assert c.offer(run(items_written=2), 100.05) is None
    assert c.offer(run(items_written=3), 100.10) is None
    assert c.deadline() == 100.2
    assert c.due(100.15) is None
    sent = c.due(100.2)
    assert sent is not None and sent.items_written == 3
    assert c.deadline() is None and c.due(101.0) is None


def test_a_change_after_the_interval_goes_out_at_once() -> None:
    c = Coalescer(0.2)
    c.offer(run(items_written=1), 100.0)
    later = run(items_written=2)
    assert c.offer(later, 100.3) is later


def test_phase_changes_and_the_final_snapshot_are_never_held() -> None:
    c = Coalescer(0.2)
    c.offer(run(phase="bulk_running"), 100.0)
    downloading = run(phase="downloading")
    assert c.offer(downloading, 100.01) is downloading
    assert c.offer(run(phase="downloading", bytes_downloaded=10), 100.02) is None
    final = run(phase="completed", status=RunStatus.COMPLETED, finished_at=T0 + timedelta(seconds=5))
    assert c.offer(final, 100.03) is final
    assert c.pending is None


def test_unchanged_snapshots_are_dropped() -> None:
    c = Coalescer(0.2)
    c.offer(run(items_written=5), 100.0)
    assert c.offer(run(items_written=5), 101.0) is None


def test_at_most_one_snapshot_per_interval_under_a_flood() -> None:
    c = Coalescer(0.2)
    sent = []
    now = 100.0
    for i in range(1, 1001):  # 1000 updates in one second
        now = 100.0 + i / 1000
        out = c.offer(run(items_written=i), now)
        if out is None:
            out = c.due(now)
        if out is not None:
            sent.append(out.items_written)
    assert len(sent) <= 6
    tail = c.due(now + 1)
    assert (tail.items_written if tail else sent[-1]) == 1000  # the last state is never lost


def test_a_new_run_is_sent_at_once_and_an_older_one_ignored() -> None:
    c = Coalescer(0.2)
    c.offer(run(), 100.0)
    newer = run(id="r2", started_at=T0 + timedelta(minutes=1), phase="starting")
    assert c.offer(newer, 100.01) is newer
    assert c.offer(run(items_written=99), 100.5) is None


def test_store_snapshots_behind_the_sent_one_are_stale() -> None:
    sent = run(phase="ingesting", items_written=500, bytes_downloaded=1000)
    assert is_behind(run(phase="ingesting", items_written=400, bytes_downloaded=1000), sent)
    assert is_behind(run(phase="downloading"), sent)
    assert not is_behind(run(phase="ingesting", items_written=600, bytes_downloaded=1200), sent)
    assert not is_behind(run(phase="finalizing"), sent)
    assert not is_behind(run(status=RunStatus.FAILED, phase="failed"), sent)
    finished = run(status=RunStatus.COMPLETED, phase="completed")
    assert is_behind(run(items_written=900), finished)
    assert is_behind(run(id="old", started_at=T0 - timedelta(hours=1)), sent)
