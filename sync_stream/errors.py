"""The service's exceptions: one root, subclasses that carry the failure stage and retriability.

The consume loop decides what to do with a failed package by asking the error
(`stage`, `retriable`, `reason`), never by matching a list of types.
"""

from __future__ import annotations

from typing import Literal

Stage = Literal["decode", "f008", "route", "T080", "T121", "distribution"]

MAX_MESSAGE_CHARS = 1024


class SyncStreamError(Exception):
    """Root of every error the service raises on purpose."""

    stage: Stage | None = None
    retriable: bool = False

    def __init__(self, message: str, *, reason: str = "error") -> None:
        super().__init__(message[:MAX_MESSAGE_CHARS])
        self.reason = reason

    @property
    def message(self) -> str:
        return str(self)


class SettingsError(SyncStreamError):
    """Invalid settings; the message names the environment variables."""


class BrokerError(SyncStreamError):
    """The embedded broker could not be started or stopped."""


class PackageRejected(SyncStreamError):
    """A package failed the F008 gate. Permanent: retrying cannot change the verdict."""

    stage: Stage = "f008"


class DecodeFailed(PackageRejected):
    """The record's bytes are not a readable package (empty, not JSON, wrong Avro schema)."""

    stage: Stage = "decode"


class RoutingFailed(SyncStreamError):
    """No route exists for a process the gate let through (the routing table changed)."""

    stage: Stage = "route"


class TransformFailed(SyncStreamError):
    """T080 or T121 could not map the package; nothing of it is distributed (rollback)."""

    def __init__(self, message: str, *, transformer: Literal["T080", "T121"], reason: str) -> None:
        super().__init__(message, reason=reason)
        self.stage = transformer


class DistributionFailed(SyncStreamError):
    """Producing an output record failed. Retriable unless the error can never succeed."""

    stage: Stage = "distribution"

    def __init__(self, message: str, *, retriable: bool, reason: str) -> None:
        super().__init__(message, reason=reason)
        self.retriable = retriable
