"""The benchmark scenarios and the registry `python -m benchmarks --scenario` picks from.

A scenario is an async function that takes the `BenchContext` and returns a `Table`.
`@scenario(name, summary)` registers it. A full run follows the order of registration.
To add one, write such a function in this module or in a module imported by
`benchmarks.cli` (as `benchmarks.read_scenarios` is), build its columns from runs, and
add its targets to the table. A scenario whose runs are not `RunResult`s passes its own
`Figure` list as the table's `figure_set`.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.competitors import PROTOTYPES, Kind
from benchmarks.load import LoadGenerator, LoadPackage, Mix
from benchmarks.profiling import format_profile, summarize
from benchmarks.report import FIGURES, Column, Figure, Ratio, Table, Target
from benchmarks.runner import RunConfig, RunResult, describe, run_competitor

ScenarioFunction = Callable[["BenchContext"], Awaitable[Table]]

OUTPUT_FIGURE = next(f for f in FIGURES if f.label == "records out/s")
PACKAGES_FIGURE = next(f for f in FIGURES if f.label == "packages/s")


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    function: ScenarioFunction
    # Part of a run without --scenario (`all`); the others run only when named.
    default: bool


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    name: str, summary: str, *, default: bool = True
) -> Callable[[ScenarioFunction], ScenarioFunction]:
    """Register a scenario under `name`."""

    def register(function: ScenarioFunction) -> ScenarioFunction:
        SCENARIOS[name] = Scenario(name, summary, function, default)
        return function

    return register


@dataclass(slots=True)
class BenchContext:
    """Options of the invocation, the load, and results that later scenarios reuse."""

    config: RunConfig
    packages: int
    repeat: int
    mix: Mix
    processes: int
    duration_s: float
    rate: float | None
    profile: bool
    output_dir: Path
    # Options of the read-side scenarios (benchmarks/read_scenarios.py).
    users: int = 1_000_000
    wrk_duration_s: float = 15.0
    wrk_connections: int = 4
    generator: LoadGenerator = field(default_factory=LoadGenerator)
    # Runs kept by (kind, processes, packages) so that later scenarios compare against
    # figures of the same invocation without running them again.
    saturated_runs: dict[tuple[Kind, int, int], list[RunResult]] = field(default_factory=dict)
    latency_runs: dict[tuple[Kind, int, int], list[RunResult]] = field(default_factory=dict)
    raw: list[dict[str, Any]] = field(default_factory=list)
    _load: list[LoadPackage] = field(default_factory=list)

    def load(self, count: int) -> list[LoadPackage]:
        """Return the first `count` packages of the invocation's load, generating more."""
        if len(self._load) < count:
            self._load += self.generator.packages(count - len(self._load), self.mix)
        return self._load[:count]

    async def runs(
        self,
        competitors: list[tuple[Kind, int]],
        load: list[LoadPackage],
        *,
        rate: float | None = None,
        label: str,
    ) -> dict[tuple[Kind, int], list[RunResult]]:
        """Run each competitor `repeat` times, interleaved so drift hits them alike."""
        results: dict[tuple[Kind, int], list[RunResult]] = {c: [] for c in competitors}
        for attempt in range(1, self.repeat + 1):
            for kind, processes in competitors:
                print(
                    f"  {label}: {kind} × {processes} process(es), run {attempt}/{self.repeat} …",
                    flush=True,
                )
                result = await run_competitor(self.config, kind, processes, load, rate=rate)
                results[(kind, processes)].append(result)
                self.raw.append({"scenario": label, "attempt": attempt, **describe(result)})
                if rate is None:
                    self.saturated_runs[(kind, processes, len(load))] = results[(kind, processes)]
        return results


def _label(kind: Kind, processes: int) -> str:
    names = {
        "pipeline": "pipeline",
        "passthrough": "(a) passthrough",
        "per-record": "(b) per-record",
        "pipeline-gc": "what-if tuned GC",
        "pipeline-fetch-10ms": "what-if fetch wait 10 ms",
        "batched": "what-if batched",
        "batched-fast-hash": "what-if fast hash",
    }
    return f"{names[kind]} ×{processes}"


def _column(kind: Kind, processes: int, runs: list[RunResult]) -> Column:
    return Column(f"{kind}-{processes}", _label(kind, processes), runs)


def _baseline_ratios(processes: int) -> list[Ratio]:
    return [
        Ratio("÷ (a)", f"pipeline-{processes}", f"passthrough-{processes}"),
        Ratio("÷ (b)", f"pipeline-{processes}", f"per-record-{processes}"),
    ]


async def _profile_run(ctx: BenchContext, load: list[LoadPackage]) -> list[str]:
    """Run the pipeline once more under py-spy; this run is not counted in the figures."""
    path = ctx.output_dir / "pipeline-profile.txt"
    print("  saturated: pipeline × 1 under py-spy (not counted) …", flush=True)
    result = await run_competitor(ctx.config, "pipeline", 1, load, profile=path)
    if result.profile_path is None or not path.exists():
        return ["profile: py-spy wrote no output"]
    samples, entries = summarize(path.read_text(), top=20)
    text = format_profile(samples, entries)
    (ctx.output_dir / "pipeline-profile-top.txt").write_text(text + "\n")
    print(text)
    return [
        f"profile: {samples} samples, top entries in {ctx.output_dir / 'pipeline-profile-top.txt'}"
    ]


@scenario("saturated", "one processor process against a backlog; throughput and CPU")
async def saturated(ctx: BenchContext) -> Table:
    load = ctx.load(ctx.packages)
    competitors: list[tuple[Kind, int]] = [("pipeline", 1), ("passthrough", 1), ("per-record", 1)]
    ratios = _baseline_ratios(1)
    results = await ctx.runs(competitors, load, label="saturated")
    table = Table(
        title=f"saturated: {len(load)} {ctx.mix} packages, 1 process, median of {ctx.repeat}",
        columns=[_column(kind, n, results[(kind, n)]) for kind, n in competitors],
        ratios=ratios,
        with_latency=False,
    )
    table.notes.append("latency is not measured here: every record waits in a backlog")
    if ctx.mix == "users":
        table.targets.append(
            Target(
                "users_pos records out/s, pipeline ÷ (b)",
                table.ratio("pipeline-1", "per-record-1", OUTPUT_FIGURE),
                1.3,
                at_least=True,
            )
        )
    if ctx.profile:
        table.notes += await _profile_run(ctx, load)
    return table


@scenario("two-processes", "processor processes in one consumer group against a backlog")
async def two_processes(ctx: BenchContext) -> Table:
    n = ctx.processes
    load = ctx.load(ctx.packages)
    competitors: list[tuple[Kind, int]] = [("pipeline", n), ("passthrough", n), ("per-record", n)]
    single = ctx.saturated_runs.get(("pipeline", 1, len(load)))
    if single is None:
        competitors.append(("pipeline", 1))
    results = await ctx.runs(competitors, load, label="two-processes")
    if single is None:
        single = results[("pipeline", 1)]
    columns = [_column(kind, p, results[(kind, p)]) for kind, p in competitors if p == n]
    columns.insert(1, _column("pipeline", 1, single))
    table = Table(
        title=(
            f"two-processes: {len(load)} {ctx.mix} packages, {n} processes in one group, "
            f"{ctx.config.partitions} partitions, median of {ctx.repeat}"
        ),
        columns=columns,
        ratios=[Ratio("÷ 1 process", f"pipeline-{n}", "pipeline-1"), *_baseline_ratios(n)],
        with_latency=False,
    )
    table.targets.append(
        Target(
            f"records out/s, {n} processes ÷ 1 process",
            table.ratio(f"pipeline-{n}", "pipeline-1", OUTPUT_FIGURE),
            1.6,
            at_least=True,
        )
    )
    return table


async def _max_rate(ctx: BenchContext) -> tuple[float, str]:
    """Return the pipeline's saturated packages/s, measuring it when no run has yet."""
    if ctx.rate is not None:
        return ctx.rate, f"rate {ctx.rate:g} packages/s set by --rate"
    load = ctx.load(ctx.packages)
    runs = ctx.saturated_runs.get(("pipeline", 1, len(load)))
    if runs is None:
        print("  latency: measuring the maximum rate (one saturated pipeline run) …", flush=True)
        runs = [await run_competitor(ctx.config, "pipeline", 1, load)]
        ctx.saturated_runs[("pipeline", 1, len(load))] = runs
    maximum = statistics.median(PACKAGES_FIGURE.read(run) for run in runs)
    return maximum / 2, f"rate {maximum / 2:.1f} packages/s, half the saturated {maximum:.1f}"


async def _latency_table(
    ctx: BenchContext, title: str, competitors: list[tuple[Kind, int]], label: str
) -> Table:
    rate, how = await _max_rate(ctx)
    count = max(1, int(rate * ctx.duration_s))
    load = ctx.load(count)
    known = {key: runs for key, runs in ctx.latency_runs.items() if key[2] == count}
    missing = [c for c in competitors if (*c, count) not in known]
    results = await ctx.runs(missing, load, rate=rate, label=label)
    for (kind, processes), runs in results.items():
        ctx.latency_runs[(kind, processes, count)] = runs
    columns = [_column(kind, n, ctx.latency_runs[(kind, n, count)]) for kind, n in competitors]
    table = Table(
        title=f"{title}: {count} {ctx.mix} packages over {ctx.duration_s:g} s, 1 process, "
        f"median of {ctx.repeat}",
        columns=columns,
        ratios=[],
        with_latency=True,
    )
    table.notes.append(how)
    table.notes.append(
        "latency: from the input record's timestamp (its send time) to the arrival of each "
        "output record at a reader in the driver"
    )
    return table


def _latency_targets(table: Table, key: str) -> None:
    figures = {f.label: f for f in table.figures()}
    column = table.column(key)
    table.targets.append(
        Target("p99 latency ms", column.median(figures["p99 latency ms"]), 50, at_least=False)
    )
    table.targets.append(
        Target("p50 latency ms", column.median(figures["p50 latency ms"]), 10, at_least=False)
    )


@scenario("latency", "one processor process at half its maximum rate; end-to-end latency")
async def latency(ctx: BenchContext) -> Table:
    competitors: list[tuple[Kind, int]] = [("pipeline", 1), ("passthrough", 1), ("per-record", 1)]
    table = await _latency_table(ctx, "latency", competitors, "latency")
    table.ratios += _baseline_ratios(1)
    _latency_targets(table, "pipeline-1")
    return table


@scenario(
    "what-if-latency",
    "the latency scenario with the processor's fetch_max_wait_ms at 10 ms",
    default=False,
)
async def what_if_latency(ctx: BenchContext) -> Table:
    competitors: list[tuple[Kind, int]] = [
        ("pipeline", 1),
        ("per-record", 1),
        ("pipeline-fetch-10ms", 1),
    ]
    table = await _latency_table(ctx, "what-if latency", competitors, "what-if-latency")
    table.ratios += [
        Ratio("÷ pipeline", "pipeline-fetch-10ms-1", "pipeline-1"),
        Ratio("÷ (b)", "pipeline-fetch-10ms-1", "per-record-1"),
    ]
    _latency_targets(table, "pipeline-fetch-10ms-1")
    return table


@scenario(
    "what-if",
    "the processor with a tuned garbage collector, and the pipeline with batched "
    "distribution (prototypes of runtime changes)",
    default=False,
)
async def what_if(ctx: BenchContext) -> Table:
    load = ctx.load(ctx.packages)
    variants: list[Kind] = ["pipeline-gc", *PROTOTYPES]
    competitors: list[tuple[Kind, int]] = [(kind, 1) for kind in variants]
    references: tuple[Kind, ...] = ("pipeline", "per-record")
    reference = {kind: ctx.saturated_runs.get((kind, 1, len(load))) for kind in references}
    competitors += [(kind, 1) for kind, runs in reference.items() if runs is None]
    results = await ctx.runs(competitors, load, label="what-if")
    columns = []
    for kind in (*references, *variants):
        runs = results.get((kind, 1)) or reference.get(kind) or []
        columns.append(_column(kind, 1, runs))
    table = Table(
        title=f"what-if: {len(load)} {ctx.mix} packages, 1 process, median of {ctx.repeat}",
        columns=columns,
        ratios=[Ratio(f"{kind} ÷ pipeline", f"{kind}-1", "pipeline-1") for kind in variants]
        + [Ratio(f"{kind} ÷ (b)", f"{kind}-1", "per-record-1") for kind in variants],
        with_latency=False,
    )
    table.notes.append(
        "batched kinds have no retry tiers or DLQ: an upper bound, see benchmarks/prototype.py"
    )
    return table


def write_results(path: Path, machine: dict[str, str], tables: list[Table], raw: Any) -> None:
    document = {"machine": machine, "tables": [t.to_json() for t in tables], "runs": raw}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


__all__ = ["SCENARIOS", "BenchContext", "Figure", "scenario", "write_results"]
