"""The `sync-stream` command line."""

from sync_stream.cli.app import app, main

__all__ = ["app", "main"]
