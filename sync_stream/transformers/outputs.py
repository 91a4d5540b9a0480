"""Output records: what a transformer produces for one facade, before any byte is sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One record for one facade topic. `value` None is a tombstone (the key is removed)."""

    facade: str
    process: str
    key: bytes
    value: bytes | None
    # Source version: build number for builds, updatedAt in epoch milliseconds otherwise.
    # A facade never takes a record older than the version it already holds.
    version: int


def parse_utc(text: str) -> datetime:
    """Parse an ISO-8601 time that carries an offset; raise ValueError for naive times."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("time has no UTC offset")
    return moment.astimezone(UTC)


def format_utc_millis(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def epoch_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
