"""How busy the machine's CPUs are, so a benchmark can say when other processes competed
with it. On a 2-core machine a torch process using both cores slows down many times over
when anything else runs (a thread waits at every barrier for its descheduled partner),
so figures measured under contention are flagged rather than silently reported."""

from __future__ import annotations

import os
import time

_TICK = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds spent on anything but idle/iowait since boot, all cores together."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return (sum(parts[:8]) - idle) / _TICK


class Watch:
    """Cores used by the whole machine, and by other processes than this one, over a span."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.busy = busy_seconds()
        self.own = time.process_time()

    def machine_cores(self) -> float:
        dt = time.perf_counter() - self.wall
        return (busy_seconds() - self.busy) / dt if dt > 0 else 0.0

    def other_cores(self) -> float:
        """Machine CPU use minus this process's own (all its threads), in cores."""
        dt = time.perf_counter() - self.wall
        own = time.process_time() - self.own
        return max(0.0, (busy_seconds() - self.busy - own) / dt) if dt > 0 else 0.0


def wait_for_quiet(max_wait_s: float = 90.0, threshold: float = 0.25,
                   sample_s: float = 2.0) -> float:
    """Wait until other processes use under ``threshold`` cores over a ``sample_s`` window,
    at most ``max_wait_s``; returns the last sample's cores (print it)."""
    t0 = time.perf_counter()
    while True:
        w = Watch()
        time.sleep(sample_s)
        cores = w.other_cores()
        if cores < threshold or time.perf_counter() - t0 > max_wait_s:
            return cores
