"""Command-line entry point: run the processors, the demo, publish packages, manage topics."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from sync_stream.cli.common import EnvFile, console, load_cli_settings, output, run_or_exit
from sync_stream.cli.dlq import dlq_app
from sync_stream.errors import SyncStreamError
from sync_stream.observability.logs import configure_logging

app = typer.Typer(
    help="MXP-Sync orchestrator: F008 gate, T080/T121 transformers and facade "
    "distribution on Kafka.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
topics_app = typer.Typer(help="Manage the service's topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
app.add_typer(dlq_app, name="dlq")


def install_stop_handlers(stop: Any) -> None:
    """Call stop() on SIGTERM and SIGINT; a second signal exits at once."""
    loop = asyncio.get_running_loop()
    signals_seen = 0

    def handle() -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen > 1:
            sys.exit(130)
        stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, handle)


@app.command()
def run(
    env_file: EnvFile = None,
    role: Annotated[
        str, typer.Option(help="What this process runs: processor, api or all.")
    ] = "all",
) -> None:
    """Run the service against the Kafka cluster in SYNC_KAFKA__BOOTSTRAP_SERVERS."""
    from sync_stream.service import run_service

    if role not in ("processor", "api", "all"):
        console.print(f"[red]error:[/] --role must be processor, api or all, not {role!r}")
        raise typer.Exit(2)
    settings = load_cli_settings(env_file)
    run_or_exit(run_service(settings, role))


@app.command()
def demo(
    keep_running: Annotated[
        bool,
        typer.Option(help="Keep the broker and service running after the report, until Ctrl-C."),
    ] = False,
) -> None:
    """Start the embedded broker, run the pipeline on examples/ and print what each facade got."""
    from sync_stream.demo import run_demo

    settings = load_cli_settings(None, log_format="console", log_level="WARNING")
    run_or_exit(run_demo(settings, output, keep_running=keep_running))


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="Loopback port to listen on.")] = 9092,
) -> None:
    """Run the embedded Kafka-API broker (Tansu, memory only) in the foreground."""
    from sync_stream.embedded import EmbeddedBroker

    configure_logging("console", "INFO")
    try:
        embedded = EmbeddedBroker(port).start()
    except SyncStreamError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"embedded broker on [bold]{embedded.bootstrap_servers}[/] (memory only); "
        "Ctrl-C stops it.\n"
        f"  export SYNC_KAFKA__BOOTSTRAP_SERVERS={embedded.bootstrap_servers}"
    )
    # Block the signals first: sigwait() only takes signals that are blocked, and an unblocked
    # SIGTERM would end this process before stop() ends the broker process.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        signal.sigwait(stop_signals)
    finally:
        embedded.stop()


@app.command()
def send(
    file: Annotated[Path, typer.Argument(help="Package file (JSON).", exists=True, dir_okay=False)],
    source: Annotated[
        str,
        typer.Option(
            help="Source module whose topic receives the package (init, fe-build, printer, http)."
        ),
    ],
    split: Annotated[
        bool,
        typer.Option(
            help="Split into chunks of chunkLoad records, adding chunk and checksum fields."
        ),
    ] = False,
    env_file: EnvFile = None,
) -> None:
    """Publish a package to its module topic."""
    from sync_stream.publish import send_file

    settings = load_cli_settings(env_file)
    if source not in settings.topics.sources:
        console.print(
            f"[red]error:[/] unknown --source {source!r}; known: "
            f"{', '.join(settings.topics.sources)}"
        )
        raise typer.Exit(2)
    try:
        results = run_or_exit(send_file(settings, file, source, split=split))
    except orjson.JSONDecodeError as exc:
        console.print(f"[red]error:[/] {file} is not valid JSON: {exc.msg}")
        raise typer.Exit(2) from None
    for meta in results:
        output.print(f"sent to {meta.topic}[{meta.partition}] at offset {meta.offset}")


@topics_app.command("create")
def topics_create(env_file: EnvFile = None) -> None:
    """Create every topic the service uses; existing topics are left as they are."""
    from sync_stream.kafka.topics import create_topics

    settings = load_cli_settings(env_file)
    created, present = run_or_exit(create_topics(settings))
    for name in created:
        output.print(f"created  {name}")
    for name in present:
        output.print(f"exists   {name}")


def main() -> None:
    app()
