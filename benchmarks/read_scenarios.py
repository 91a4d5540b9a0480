"""Scenarios of the read side: the users_pos projection rebuild and `GET /api/users_pos`.

- `projection-rebuild` writes `--users` UserPos records over 100 restaurants to a facade
  topic, then times a new `UsersPosProjection` in a fresh process until it is ready,
  against a raw aiokafka consumer reading the same topic to its end
  (`benchmarks/rebuild_probe.py`).
- `http-users-pos` serves restaurants of 50 users with `sync-stream run --role api` and
  loads `GET /api/users_pos` with wrk, against a trivial route of the same server
  (`benchmarks/http_load.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import sys
from dataclasses import dataclass
from typing import Any

from benchmarks.http_load import TRIVIAL_PATH, ApiServer, WrkRun, run_wrk, write_wrk_script
from benchmarks.http_load import wrk_binary as find_wrk
from benchmarks.profiling import Profiler, format_profile, summarize
from benchmarks.report import MIB, Figure, Ratio, Table, Target
from benchmarks.report import Column as TableColumn
from benchmarks.runner import delete_topics, new_run_id
from benchmarks.scenarios import BenchContext, scenario
from benchmarks.users_topic import Restaurant, make_restaurants, write_users
from sync_stream.kafka.topics import create_topics
from sync_stream.projection.users_pos import USERS_POS_FACADE
from sync_stream.settings import Settings, load_settings

REBUILD_RESTAURANTS = 100
PROBE_TIMEOUT_S = 300.0
HTTP_RESTAURANTS = 1000
HTTP_USERS_PER_RESTAURANT = 50
WARM_UP_S = 3.0


@dataclass(frozen=True, slots=True)
class RebuildRun:
    """One read of the topic by the projection or the raw consumer, in its own process."""

    mode: str
    records: int
    seconds: float
    cpu_s: float
    rss_delta_bytes: float
    peak_rss_bytes: int
    traced_bytes: float
    complete: bool
    # Records the raw consumer did not read, or users the projection does not hold.
    failures: int

    def per_record(self, amount: float) -> float:
        return amount / self.records if self.records else math.nan


def _timed(run: RebuildRun, value: float) -> float:
    """Return a timing or resident-memory figure, or NaN for a run under tracemalloc, which
    distorts both."""
    return math.nan if run.mode == "traced" else value


REBUILD_FIGURES: tuple[Figure, ...] = (
    Figure("records/s until ready", lambda r: _timed(r, r.records / r.seconds)),
    Figure("seconds until ready", lambda r: _timed(r, r.seconds), 2),
    Figure("CPU µs per record", lambda r: _timed(r, r.per_record(r.cpu_s * 1e6)), 2),
    Figure("RSS after − before, MiB", lambda r: _timed(r, r.rss_delta_bytes / MIB), 1),
    Figure(
        "RSS after − before, bytes per record", lambda r: _timed(r, r.per_record(r.rss_delta_bytes))
    ),
    Figure("tracemalloc bytes per user (users_pos.py)", lambda r: r.per_record(r.traced_bytes)),
    Figure("peak RSS MiB", lambda r: _timed(r, r.peak_rss_bytes / MIB), 1),
)
RATE_FIGURE = REBUILD_FIGURES[0]
RSS_PER_USER_FIGURE = REBUILD_FIGURES[4]

HTTP_FIGURES: tuple[Figure, ...] = (
    Figure("requests/s", lambda r: r.requests_per_s),
    Figure("p50 latency ms", lambda r: r.p50_ms, 2),
    Figure("p90 latency ms", lambda r: r.p90_ms, 2),
    Figure("p99 latency ms", lambda r: r.p99_ms, 2),
    Figure("max latency ms", lambda r: r.max_ms, 1),
    Figure("server CPU µs per request", lambda r: r.server_cpu_us_per_request, 1),
    Figure(
        "response bytes (mean)",
        lambda r: r.response_bytes / r.requests if r.requests else math.nan,
    ),
)
REQUESTS_FIGURE = HTTP_FIGURES[0]
P99_FIGURE = HTTP_FIGURES[3]


def _run_settings(ctx: BenchContext, prefix: str) -> Settings:
    return load_settings(
        kafka={"bootstrap_servers": ctx.config.bootstrap},
        topics={"prefix": prefix, "partitions": ctx.config.partitions},
    )


async def _probe(
    ctx: BenchContext, mode: str, prefix: str, written: int, log_name: str
) -> RebuildRun:
    """Run `benchmarks.rebuild_probe` in a fresh process and read its JSON line."""
    log_path = ctx.output_dir / log_name
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.rebuild_probe",
            mode,
            ctx.config.bootstrap,
            prefix,
            str(PROBE_TIMEOUT_S),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), PROBE_TIMEOUT_S + 60)
        except TimeoutError:
            process.kill()
            output, _ = await process.communicate()
    fields: dict[str, Any] | None = None
    for line in output.decode("utf-8", "replace").splitlines():
        with contextlib.suppress(ValueError):
            candidate = json.loads(line)
            if isinstance(candidate, dict) and candidate.get("mode") == mode:
                fields = candidate
    if fields is None:
        return RebuildRun(mode, written, math.nan, math.nan, math.nan, 0, math.nan, False, 0)
    held = fields["records"] if mode == "raw" else fields["users"]
    return RebuildRun(
        mode=mode,
        records=written,
        seconds=fields["seconds"],
        cpu_s=fields["cpu_s"],
        rss_delta_bytes=fields["rss_after"] - fields["rss_before"],
        peak_rss_bytes=fields["peak_rss"],
        traced_bytes=fields["traced_bytes"] if fields["traced_bytes"] is not None else math.nan,
        complete=bool(fields["complete"]),
        failures=max(0, written - held),
    )


def _describe(run: Any) -> dict[str, Any]:
    described = {name: getattr(run, name) for name in run.__slots__}
    return {
        k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in described.items()
    }


@scenario(
    "projection-rebuild",
    "rebuild the users_pos projection from --users users against a raw consumer",
    default=False,
)
async def projection_rebuild(ctx: BenchContext) -> Table:
    users = ctx.users
    restaurant_count = min(REBUILD_RESTAURANTS, users)
    per_restaurant = users // restaurant_count
    written_users = per_restaurant * restaurant_count
    run_id = new_run_id()
    prefix = f"bench-{run_id}."
    settings = _run_settings(ctx, prefix)
    await create_topics(settings)
    topic = settings.topics.facade_topic(USERS_POS_FACADE)
    runs: dict[str, list[RebuildRun]] = {"projection": [], "raw": [], "traced": []}
    try:
        print(
            f"  projection-rebuild: writing {written_users:,} users over "
            f"{restaurant_count} restaurants …",
            flush=True,
        )
        written = await write_users(
            settings, topic, make_restaurants(restaurant_count), per_restaurant
        )
        print(
            f"  projection-rebuild: wrote {written.records:,} records in {written.seconds:.1f} s",
            flush=True,
        )
        for attempt in range(1, ctx.repeat + 1):
            for mode in ("projection", "raw"):
                print(f"  projection-rebuild: {mode}, run {attempt}/{ctx.repeat} …", flush=True)
                run = await _probe(
                    ctx, mode, prefix, written.records, f"{run_id}-{mode}-{attempt}.log"
                )
                runs[mode].append(run)
                ctx.raw.append(
                    {"scenario": "projection-rebuild", "attempt": attempt, **_describe(run)}
                )
        print("  projection-rebuild: projection under tracemalloc (memory only) …", flush=True)
        traced = await _probe(ctx, "traced", prefix, written.records, f"{run_id}-traced.log")
        runs["traced"].append(traced)
        ctx.raw.append({"scenario": "projection-rebuild", "attempt": 1, **_describe(traced)})
    finally:
        await delete_topics(settings.kafka, prefix)

    table = Table(
        title=(
            f"projection-rebuild: {written.records:,} users over {restaurant_count} restaurants, "
            f"{ctx.config.partitions} partitions, median of {ctx.repeat}"
        ),
        columns=[
            TableColumn("projection", "UsersPosProjection", runs["projection"]),
            TableColumn("raw", "raw consume (getmany)", runs["raw"]),
            TableColumn("traced", "projection under tracemalloc, 1 run", runs["traced"]),
        ],
        ratios=[Ratio("projection ÷ raw", "projection", "raw")],
        with_latency=False,
        figure_set=REBUILD_FIGURES,
        failure_text="records not read or users not held",
    )
    table.notes += [
        f"records written with send_batch in {written.seconds:.1f} s "
        f"({written.records / written.seconds:,.0f}/s); mean value "
        f"{written.value_bytes / written.records:.0f} B, key "
        f"{written.key_bytes / written.records:.0f} B",
        "each read runs in a fresh process with the collector settings of `sync-stream run`; "
        "timed from start() until every partition reaches its first high watermark",
        "RSS: VmRSS after gc.collect() and malloc_trim(0), before start and after stop; the raw "
        "consumer keeps nothing, so its figure is the floor of this method",
        "tracemalloc: bytes still allocated from lines of sync_stream/projection/users_pos.py",
    ]
    table.targets.append(
        Target(
            "rebuild records/s ÷ raw consume records/s",
            table.ratio("projection", "raw", RATE_FIGURE),
            0.3,
            at_least=True,
        )
    )
    table.targets.append(
        Target(
            "RSS bytes per user held",
            table.column("projection").median(RSS_PER_USER_FIGURE),
            600,
            at_least=False,
        )
    )
    return table


def _users_paths(restaurants: list[Restaurant]) -> list[str]:
    return [
        f"/api/users_pos?cdn_id={r.cdn_id}&restaurant_id={r.restaurant_id}" for r in restaurants
    ]


async def _profile_route(
    ctx: BenchContext, server: ApiServer, script: Any, run_id: str
) -> list[str]:
    """Load the users_pos route once more under py-spy; this run is not counted."""
    path = ctx.output_dir / "api-users-pos-profile.txt"
    print("  http-users-pos: users_pos under py-spy (not counted) …", flush=True)
    profiler = Profiler(server.pid, path)
    await profiler.start()
    try:
        await run_wrk(
            server,
            script,
            "profile",
            duration_s=ctx.wrk_duration_s,
            connections=ctx.wrk_connections,
            log_path=ctx.output_dir / f"{run_id}-wrk.log",
        )
    finally:
        await profiler.stop()
    if not path.exists():
        return ["profile: py-spy wrote no output"]
    samples, entries = summarize(path.read_text(), top=25)
    text = format_profile(samples, entries)
    top_path = ctx.output_dir / "api-users-pos-profile-top.txt"
    top_path.write_text(text + "\n")
    print(text)
    return [f"profile: {samples} samples, top entries in {top_path}"]


@scenario(
    "http-users-pos",
    "GET /api/users_pos under wrk against a trivial route of the same server",
    default=False,
)
async def http_users_pos(ctx: BenchContext) -> Table:
    if find_wrk() is None:
        table = Table(
            title="http-users-pos: skipped",
            columns=[],
            ratios=[],
            with_latency=False,
            figure_set=(),
        )
        table.notes.append("wrk not installed (Debian: apt-get install wrk); scenario skipped")
        return table

    run_id = new_run_id()
    prefix = f"bench-{run_id}."
    settings = _run_settings(ctx, prefix)
    await create_topics(settings)
    token = secrets.token_urlsafe(24)
    restaurants = make_restaurants(HTTP_RESTAURANTS)
    runs: dict[str, list[WrkRun]] = {"users_pos": [], "trivial": []}
    notes: list[str] = []
    wrk_log = ctx.output_dir / f"{run_id}-wrk.log"
    server: ApiServer | None = None
    try:
        print(
            f"  http-users-pos: writing {HTTP_RESTAURANTS} restaurants of "
            f"{HTTP_USERS_PER_RESTAURANT} users …",
            flush=True,
        )
        await write_users(
            settings,
            settings.topics.facade_topic(USERS_POS_FACADE),
            restaurants,
            HTTP_USERS_PER_RESTAURANT,
        )
        server = await ApiServer.start(
            ctx.config.bootstrap,
            prefix,
            ctx.config.partitions,
            token,
            ctx.output_dir / f"{run_id}-api.log",
        )
        await server.wait_ready()
        scripts = {
            "users_pos": write_wrk_script(
                ctx.output_dir / f"{run_id}-users-pos.lua", _users_paths(restaurants), token
            ),
            "trivial": write_wrk_script(
                ctx.output_dir / f"{run_id}-trivial.lua", [TRIVIAL_PATH], token
            ),
        }
        for route, script in scripts.items():
            print(f"  http-users-pos: warming up {route} for {WARM_UP_S:g} s …", flush=True)
            await run_wrk(
                server,
                script,
                f"warm-up {route}",
                duration_s=WARM_UP_S,
                connections=ctx.wrk_connections,
                log_path=wrk_log,
            )
        for attempt in range(1, ctx.repeat + 1):
            for route, script in scripts.items():
                print(f"  http-users-pos: {route}, run {attempt}/{ctx.repeat} …", flush=True)
                run = await run_wrk(
                    server,
                    script,
                    route,
                    duration_s=ctx.wrk_duration_s,
                    connections=ctx.wrk_connections,
                    log_path=wrk_log,
                )
                runs[route].append(run)
                ctx.raw.append({"scenario": "http-users-pos", "attempt": attempt, **_describe(run)})
        if ctx.profile:
            notes += await _profile_route(ctx, server, scripts["users_pos"], run_id)
    finally:
        if server is not None:
            await server.stop()
        await delete_topics(settings.kafka, prefix)

    table = Table(
        title=(
            f"http-users-pos: {HTTP_RESTAURANTS} restaurants of {HTTP_USERS_PER_RESTAURANT} users, "
            f"wrk 1 thread, {ctx.wrk_connections} connections, {ctx.wrk_duration_s:g} s per run, "
            f"median of {ctx.repeat}"
        ),
        columns=[
            TableColumn("users_pos", "GET /api/users_pos", runs["users_pos"]),
            TableColumn("trivial", f"GET {TRIVIAL_PATH} (trivial)", runs["trivial"]),
        ],
        ratios=[Ratio("users_pos ÷ trivial", "users_pos", "trivial")],
        with_latency=False,
        figure_set=HTTP_FIGURES,
        failure_text="responses not 2xx or socket errors",
    )
    table.notes += [
        "one server process: sync-stream run --role api with a bench-only route that returns a "
        "constant body behind the same bearer token check",
        f"users_pos requests cycle through all {HTTP_RESTAURANTS} restaurants; each route was "
        f"warmed up for {WARM_UP_S:g} s first",
        *notes,
    ]
    table.targets.append(
        Target(
            "users_pos requests/s ÷ trivial requests/s",
            table.ratio("users_pos", "trivial", REQUESTS_FIGURE),
            0.5,
            at_least=True,
        )
    )
    table.targets.append(
        Target(
            "users_pos p99 latency ms",
            table.column("users_pos").median(P99_FIGURE),
            20,
            at_least=False,
        )
    )
    return table
