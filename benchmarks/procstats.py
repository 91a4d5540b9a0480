"""CPU time and peak resident memory of running processes, read from Linux `/proc`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """CPU seconds used so far (user plus system) and the peak RSS so far, in bytes."""

    cpu_s: float
    peak_rss_bytes: int


def sample(pid: int) -> ProcessSample | None:
    """Read one process's counters; return None when it has exited."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name in field 2 may contain spaces, so split after its closing bracket.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    peak_kib = 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            peak_kib = int(line.split()[1])
            break
    return ProcessSample(cpu_s=(utime + stime) / CLOCK_TICKS_PER_S, peak_rss_bytes=peak_kib * 1024)


def own_sample() -> ProcessSample:
    """Sample this process."""
    found = sample(os.getpid())
    assert found is not None
    return found
