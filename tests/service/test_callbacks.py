"""Callback delivery: retries with backoff, refusals, a full queue (local receivers only)."""

from __future__ import annotations

import time

from sanchari_processes.netguard import AllowList, NetPolicy
from sanchari_processes.service.callbacks import CallbackNotifier
from tests.service_fixtures import CallbackReceiver

ALLOW_LOCAL = NetPolicy(allow=AllowList.parse("127.0.0.1"), read_timeout_s=5.0)


def _wait(notifier: CallbackNotifier, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(notifier.delivered) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_delivers_and_retries_until_a_2xx() -> None:
    receiver = CallbackReceiver(status=503)
    notifier = CallbackNotifier(ALLOW_LOCAL, retries=3, backoff_s=0.1)
    notifier.start()
    try:
        assert notifier.send(f"{receiver.url}/done", {"jobID": "a"})
        time.sleep(0.05)
        receiver.status = 200  # the second attempt (after 0.1 s) succeeds
        _wait(notifier, 1)
        assert notifier.delivered[-1] == (f"{receiver.url}/done", "200")
        assert [b["jobID"] for b in receiver.bodies("/done")] in (["a"], ["a", "a"])
    finally:
        notifier.stop()
        receiver.close()


def test_gives_up_after_the_attempts_and_progress_is_sent_once() -> None:
    receiver = CallbackReceiver(status=500)
    notifier = CallbackNotifier(ALLOW_LOCAL, retries=2, backoff_s=0.05)
    notifier.start()
    try:
        notifier.send(f"{receiver.url}/done", {"n": 1})
        notifier.send(f"{receiver.url}/progress", {"n": 2}, retry=False)
        _wait(notifier, 2)
        assert len(receiver.bodies("/done")) == 2 and len(receiver.bodies("/progress")) == 1
        assert {outcome for _, outcome in notifier.delivered} == {"500"}
    finally:
        notifier.stop()
        receiver.close()


def test_private_addresses_are_refused_without_the_allow_list() -> None:
    receiver = CallbackReceiver()
    notifier = CallbackNotifier(NetPolicy(), retries=3, backoff_s=0.05)
    notifier.start()
    try:
        notifier.send(f"{receiver.url}/done", {"n": 1})
        _wait(notifier, 1)
        assert notifier.delivered[-1][1].startswith("refused")
        assert receiver.received == []
    finally:
        notifier.stop()
        receiver.close()


def test_a_full_queue_drops_instead_of_blocking() -> None:
    notifier = CallbackNotifier(NetPolicy(), queue_size=2)  # not started: nothing drains
    started = time.monotonic()
    sent = [notifier.send("https://hooks.example.org/x", {"n": i}) for i in range(5)]
    assert sent == [True, True, False, False, False] and time.monotonic() - started < 1.0
    assert not notifier.send(None, {})
