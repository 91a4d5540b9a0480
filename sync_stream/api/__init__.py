"""The HTTP API: the F008 facade, the users_pos projection and sync statuses over HTTP."""

from sync_stream.api.app import create_app

__all__ = ["create_app"]
