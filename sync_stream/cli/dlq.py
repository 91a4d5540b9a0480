"""`sync-stream dlq`: list, show and replay dead-lettered records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from sync_stream.cli.common import EnvFile, console, load_cli_settings, output, run_or_exit
from sync_stream.distribution import headers as h
from sync_stream.dlq.inspect import (
    DeadLetter,
    DlqFilter,
    preview_json,
    read_dead_letters,
    replay,
    safe_preview,
    summarize,
)

dlq_app = typer.Typer(help="Inspect and replay the dead-letter queue.", no_args_is_help=True)

Stage = Annotated[
    str | None, typer.Option(help="Only this stage: decode, f008, route, T080, T121, distribution.")
]
Reason = Annotated[str | None, typer.Option(help="Only this reason code, e.g. invalid_record.")]
ErrorClass = Annotated[
    str | None, typer.Option("--error-class", help="Only this error class name.")
]
Source = Annotated[str | None, typer.Option(help="Only packages from this source module.")]
SyncId = Annotated[str | None, typer.Option("--sync-id", help="Only this syncId.")]
Since = Annotated[
    datetime | None,
    typer.Option(help="Only records written at or after this ISO-8601 time (UTC when no offset)."),
]
Until = Annotated[
    datetime | None, typer.Option(help="Only records written at or before this ISO-8601 time.")
]
Positions = Annotated[
    list[str] | None,
    typer.Option("--record", help="Only this record, as PARTITION:OFFSET of the DLQ; repeatable."),
]


def _filter(
    stage: str | None,
    reason: str | None,
    error_class: str | None,
    source: str | None,
    sync_id: str | None,
    since: datetime | None,
    until: datetime | None,
    positions: list[str] | None = None,
) -> DlqFilter:
    return DlqFilter(
        stage=stage,
        reason=reason,
        error_class=error_class,
        source=source,
        sync_id=sync_id,
        since=_utc(since),
        until=_utc(until),
        positions=frozenset(positions) if positions else None,
    )


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _table(letters: list[DeadLetter], title: str) -> Table:
    table = Table(title=title)
    for column in (
        "record",
        "failed at",
        "stage",
        "reason",
        "error class",
        "source",
        "sync id",
        "original",
        "attempt",
        "bytes",
    ):
        table.add_column(column, overflow="fold")
    for letter in letters:
        original = (
            f"{letter.original_topic}[{letter.header(h.ORIGINAL_PARTITION)}]"
            f"@{letter.header(h.ORIGINAL_OFFSET)}"
        )
        table.add_row(
            letter.position,
            letter.failed_at,
            letter.stage,
            letter.reason,
            letter.error_class,
            letter.source,
            letter.sync_id,
            original,
            letter.header(h.ATTEMPT),
            str(len(letter.value)) if letter.value is not None else "null",
        )
    return table


@dlq_app.command("list")
def list_records(
    stage: Stage = None,
    reason: Reason = None,
    error_class: ErrorClass = None,
    source: Source = None,
    sync_id: SyncId = None,
    since: Since = None,
    until: Until = None,
    env_file: EnvFile = None,
) -> None:
    """List DLQ records with their failure stage and reason, oldest first."""
    settings = load_cli_settings(env_file)
    selection = _filter(stage, reason, error_class, source, sync_id, since, until)
    letters = run_or_exit(read_dead_letters(settings, selection))
    output.print(_table(letters, f"{settings.topics.dlq_topic}: {len(letters)} records"))
    output.print(f"by stage/reason: {summarize(letters)}")


@dlq_app.command("show")
def show(
    record: Annotated[str, typer.Argument(help="PARTITION:OFFSET of the DLQ record.")],
    env_file: EnvFile = None,
) -> None:
    """Show one DLQ record: its headers and a preview of the package envelope (no records)."""
    settings = load_cli_settings(env_file)
    letters = run_or_exit(read_dead_letters(settings, DlqFilter(positions=frozenset({record}))))
    if not letters:
        console.print(f"[red]error:[/] no DLQ record at {record} (expected PARTITION:OFFSET)")
        raise typer.Exit(1)
    letter = letters[0]
    table = Table(title=f"DLQ record {letter.position}", show_header=False)
    for name, value in letter.headers:
        table.add_row(name, value.decode("utf-8", "replace"))
    output.print(table)
    output.print(preview_json(safe_preview(letter, settings.limits.max_package_bytes)))


@dlq_app.command("replay")
def replay_records(
    stage: Stage = None,
    reason: Reason = None,
    error_class: ErrorClass = None,
    source: Source = None,
    sync_id: SyncId = None,
    since: Since = None,
    until: Until = None,
    positions: Positions = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be replayed and send nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Replay without asking for confirmation.")
    ] = False,
    env_file: EnvFile = None,
) -> None:
    """Send selected DLQ records back to their original topic, keys and bytes unchanged."""
    settings = load_cli_settings(env_file)
    selection = _filter(stage, reason, error_class, source, sync_id, since, until, positions)
    if selection == DlqFilter() and not yes:
        console.print("no filter given: every DLQ record is selected")
    letters = run_or_exit(read_dead_letters(settings, selection))
    output.print(_table(letters, f"{len(letters)} records selected for replay"))
    if not letters or dry_run:
        console.print("dry run: nothing sent" if dry_run else "nothing to replay")
        return
    if not yes and not typer.confirm(f"Replay {len(letters)} records to their original topics?"):
        console.print("cancelled: nothing sent")
        raise typer.Exit(1)
    done = run_or_exit(replay(settings, letters))
    output.print(f"replayed {len(done)} records")
