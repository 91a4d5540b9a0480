"""`python -m benchmarks`: run the scenarios and print one table per scenario.

Every run is bounded by a package count and a time limit and stops by itself. With the
defaults a full invocation took about 7 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

# Imported for its @scenario registrations: projection-rebuild and http-users-pos.
import benchmarks.read_scenarios  # noqa: F401
from benchmarks.load import MIXES
from benchmarks.report import Table
from benchmarks.runner import RunConfig
from benchmarks.scenarios import SCENARIOS, BenchContext, write_results
from sync_stream.embedded.broker import EmbeddedBroker
from sync_stream.observability.logs import configure_logging

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"


def machine_description() -> dict[str, str]:
    """Describe the machine the way docs/benchmarks.md reports it."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = subprocess.run(["free", "-h"], capture_output=True, text=True, check=False)
        total = memory.stdout.splitlines()[1].split()[1]
    except (OSError, IndexError):
        total = "unknown"
    return {
        "cores": str(os.cpu_count()),
        "memory": total,
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure the pipeline against a passthrough (a) and a per-record loop (b).",
        epilog="Scenarios: "
        + "; ".join(f"{name} ({entry.summary})" for name, entry in SCENARIOS.items())
        + ".",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[*SCENARIOS, "all"],
        help="Scenario to run; repeat the option for several. Default: all, which is "
        f"{', '.join(name for name, s in SCENARIOS.items() if s.default)}.",
    )
    parser.add_argument(
        "--packages", type=int, default=1200, help="Packages per saturated run (default 1200)."
    )
    parser.add_argument(
        "--duration-s",
        type=float,
        default=10.0,
        help="Length of each fixed-rate latency run, in seconds (default 10).",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="Processes in one consumer group in the two-processes scenario (default 2).",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="Runs per competitor; medians are reported."
    )
    parser.add_argument(
        "--mix",
        choices=MIXES,
        default="users",
        help="users: only users_pos chunks of 100 users; mixed: 8 users chunks, 1 build_info "
        "and 1 printers package of 10 rows in every 10 (default users).",
    )
    parser.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help="Use this Kafka cluster instead of starting the embedded broker.",
    )
    parser.add_argument(
        "--partitions", type=int, default=6, help="Partitions of every topic (default 6)."
    )
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=120.0,
        help="Time limit of one run, in seconds; a run cut short is marked partial.",
    )
    parser.add_argument(
        "--rate", type=float, help="Packages/s of the latency scenario instead of half the max."
    )
    parser.add_argument(
        "--users",
        type=int,
        default=1_000_000,
        help="UserPos records written for projection-rebuild (default 1000000).",
    )
    parser.add_argument(
        "--wrk-duration-s",
        type=float,
        default=15.0,
        help="Length of each wrk run of http-users-pos, in seconds (default 15).",
    )
    parser.add_argument(
        "--wrk-connections",
        type=int,
        default=4,
        help="Open connections of each wrk run of http-users-pos (default 4).",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="Add one run under py-spy to the saturated and http-users-pos scenarios.",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"Where results, logs and profiles go (default {DEFAULT_OUTPUT}).",
    )
    args = parser.parse_args(argv)
    if args.packages < 1 or args.repeat < 1 or args.duration_s <= 0:
        parser.error("--packages, --repeat and --duration-s must be positive")
    if args.users < 1 or args.wrk_duration_s < 1 or args.wrk_connections < 1:
        parser.error("--users, --wrk-duration-s and --wrk-connections must be at least 1")
    if args.processes < 2:
        parser.error("--processes must be at least 2: the scenario compares it with one")
    if args.partitions < args.processes:
        parser.error("--partitions must be at least --processes, or a process stays idle")
    return args


async def run(args: argparse.Namespace, output_dir: Path) -> list[Table]:
    names = args.scenario or ["all"]
    defaults = [name for name, entry in SCENARIOS.items() if entry.default]
    selected = defaults if "all" in names else list(dict.fromkeys(names))
    machine = machine_description()
    print(
        f"machine: {machine['cores']} cores, {machine['memory']} memory, {machine['cpu']}, "
        f"Python {machine['python']}",
        flush=True,
    )

    broker: EmbeddedBroker | None = None
    if args.bootstrap:
        bootstrap = args.bootstrap
    else:
        broker = EmbeddedBroker().start()
        bootstrap = broker.bootstrap_servers
        print(f"embedded broker on {bootstrap}", flush=True)
    config = RunConfig(
        bootstrap=bootstrap,
        partitions=args.partitions,
        timeout_s=args.timeout_s,
        work_dir=output_dir,
        broker_pid=_broker_pid(broker),
    )
    context = BenchContext(
        config=config,
        packages=args.packages,
        repeat=args.repeat,
        mix=args.mix,
        processes=args.processes,
        duration_s=args.duration_s,
        rate=args.rate,
        profile=args.profile,
        output_dir=output_dir,
        users=args.users,
        wrk_duration_s=args.wrk_duration_s,
        wrk_connections=args.wrk_connections,
    )
    started = time.monotonic()
    tables: list[Table] = []
    try:
        for name in selected:
            print(f"scenario {name}: {SCENARIOS[name].summary}", flush=True)
            table = await SCENARIOS[name].function(context)
            tables.append(table)
            print(table.render(), flush=True)
            write_results(output_dir / "results.json", machine, tables, context.raw)
    finally:
        if broker is not None:
            broker.stop()
    print(f"\ntotal {time.monotonic() - started:.0f} s; results in {output_dir}")
    for table in tables:
        print()
        print(table.render())
    return tables


def _broker_pid(broker: EmbeddedBroker | None) -> int | None:
    # NOTE: EmbeddedBroker keeps its process private; the PID only adds the broker's CPU
    # to the table, so a missing attribute just leaves that row empty.
    process = getattr(broker, "_process", None)
    pid = getattr(process, "pid", None)
    return pid if isinstance(pid, int) else None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("console", "WARNING")
    # SIGTERM unwinds like Ctrl-C, so the members and the embedded broker are stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    output_dir: Path = args.output_dir / time.strftime("%Y%m%d-%H%M%S")
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(run(args, output_dir))
    except KeyboardInterrupt:
        sys.exit(130)
