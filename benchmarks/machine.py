"""What every benchmark prints about the machine: the CPU and its instruction sets, the load
average, and a loud warning when the machine was not idle (then no timing is a result)."""

from __future__ import annotations

import os
import time
from pathlib import Path

#: Below this 1-minute load average a machine counts as idle.
IDLE_LOAD = 0.3


def cpu_flags() -> str:
    """The CPU's model and the instruction sets that decide inference speed (Linux)."""
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16")
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        return model
    have = [f for f in wanted if f in flags]
    return f"{model}; {', '.join(have) or 'none of ' + ', '.join(wanted)}"


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def warn_if_busy(loads: list[float]) -> None:
    """A loud warning when a timed run began on a machine that was not idle (``loads``: the
    1-minute load average as each began; a run's own load shows only after it)."""
    if max(loads) >= IDLE_LOAD:
        line = "!" * 78
        print(
            f"{line}\nWARNING: the machine was NOT idle (load average up to {max(loads):.2f}, "
            f"idle is < {IDLE_LOAD}):\nthese timings are NOT results; rerun on an idle "
            f"machine.\n{line}"
        )


def settle(max_wait_s: float = 300.0) -> float:
    """Wait (at most ``max_wait_s``) for the 1-minute load average to fall under
    :data:`IDLE_LOAD`, so that each timed run starts idle and not in the wake of the one
    before; returns the load average it starts at (at once with ``max_wait_s`` 0)."""
    deadline = time.monotonic() + max_wait_s
    while os.getloadavg()[0] >= IDLE_LOAD and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]
