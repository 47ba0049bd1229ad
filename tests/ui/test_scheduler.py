"""LatestWins, the blend panel's scheduler, on its own (it is Qt-free)."""

from __future__ import annotations

from dataclasses import dataclass

from ui.blend.scheduler import LatestWins


@dataclass(eq=False)
class Job:
    key: str


def test_the_first_request_starts_and_the_next_ones_wait_newest_only():
    s = LatestWins(key=lambda r: r.key)
    a, b, c = Job("a"), Job("b"), Job("c")
    assert s.submit(a) is a and s.running is a and s.busy
    assert s.submit(b) is None and s.waiting is b
    assert s.submit(c) is None and s.waiting is c  # b will never run
    assert s.finish(a) == (False, c)  # a's result is stale: c waits; c starts now
    assert s.running is c and s.waiting is None
    assert s.finish(c) == (True, None) and not s.busy


def test_asking_again_for_what_is_running_waits_for_nothing():
    s = LatestWins(key=lambda r: r.key)
    first = Job("x")
    s.submit(first)
    assert s.submit(Job("y")) is None
    assert s.submit(Job("x")) is None and s.waiting is None  # back to the running settings
    assert s.finish(first) == (True, None)


def test_after_a_reset_a_late_result_is_unwanted_and_starts_nothing():
    s = LatestWins(key=lambda r: r.key)
    old = Job("old")
    s.submit(old)
    s.submit(Job("queued"))
    s.reset()
    assert not s.busy
    new = Job("new")
    assert s.submit(new) is new
    assert s.finish(old) == (False, None) and s.running is new
    assert s.finish(new) == (True, None)


def test_a_discarded_result_is_unwanted_and_nothing_starts_beside_it():
    s = LatestWins(key=lambda r: r.key)
    running = Job("a")
    s.submit(running)
    s.submit(Job("b"))
    s.discard()  # e.g. an older sound was brought back from the history
    assert s.waiting is None and s.running is running and s.busy
    assert s.finish(running) == (False, None) and not s.busy


def test_asking_for_a_discarded_jobs_settings_waits_for_a_new_job():
    s = LatestWins(key=lambda r: r.key)
    running, again = Job("a"), Job("a")
    s.submit(running)
    s.discard()
    assert s.submit(again) is None and s.waiting is again  # the running result will be dropped
    assert s.finish(running) == (False, again)
    assert s.finish(again) == (True, None)
