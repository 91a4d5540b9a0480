"""Sample a running processor with py-spy and summarize where its CPU time goes.

py-spy (from the `bench` extra) attaches to a process by PID, which needs ptrace
permission: root, or `kernel.yama.ptrace_scope` 0. It writes collapsed stacks ("raw"
format): one line per distinct stack, frames separated by `;`, then the sample count.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SAMPLES_PER_S = 100
# py-spy frames read "function (module/path.py:line)"; the line number is dropped so that
# every line of one function adds up.
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")


def py_spy_binary() -> str:
    """Find py-spy beside this interpreter or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    return found


class Profiler:
    """`py-spy record` attached to one process until stop()."""

    def __init__(self, pid: int, output: Path) -> None:
        self._pid = pid
        self._output = output
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            py_spy_binary(),
            "record",
            "--pid",
            str(self._pid),
            "--rate",
            str(SAMPLES_PER_S),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(self._output),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    async def stop(self) -> None:
        """Stop sampling; py-spy writes its file on SIGINT. Safe to call twice."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


@dataclass(frozen=True, slots=True)
class ProfileEntry:
    """One function's share of the samples: on top of the stack (self) or anywhere (total)."""

    function: str
    self_share: float
    total_share: float


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    return f"{match['function']} ({match['file']})"


def summarize(raw: str, top: int = 20) -> tuple[int, list[ProfileEntry]]:
    """Return the sample count and the functions with the most self samples."""
    self_samples: Counter[str] = Counter()
    total_samples: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(frame) for frame in stack.split(";")]
        samples += count
        self_samples[frames[-1]] += count
        for name in set(frames):
            total_samples[name] += count
    if samples == 0:
        return 0, []
    entries = [
        ProfileEntry(name, count / samples, total_samples[name] / samples)
        for name, count in self_samples.most_common(top)
    ]
    return samples, entries


def summarize_totals(raw: str, names: list[str]) -> dict[str, float]:
    """Return the inclusive share of samples of each named function (substring match)."""
    totals: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        for name in names:
            if name in stack:
                totals[name] += count
    return {name: (totals[name] / samples if samples else 0.0) for name in names}


def format_profile(samples: int, entries: list[ProfileEntry]) -> str:
    lines = [f"{samples} samples at {SAMPLES_PER_S}/s (CPU only, idle excluded)"]
    lines.append(f"{'self':>6} {'total':>6}  function")
    for entry in entries:
        lines.append(f"{entry.self_share:6.1%} {entry.total_share:6.1%}  {entry.function}")
    return "\n".join(lines)
