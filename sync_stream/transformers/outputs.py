"""Output records: what a transformer produces for one facade, before any byte is sent."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

# The form str(uuid.UUID(text)) returns; text already in it needs no parsing.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()


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
    """Parse an ISO-8601 time that carries an offset into UTC.

    Raise ValueError for a naive time or one that falls outside years 1..9999 in UTC.
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("time has no UTC offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("time is outside years 1..9999 in UTC") from None


def canonical_uuid(text: str) -> str:
    """Return a UUID in lower-case hyphenated form; raise ValueError when it is not a UUID."""
    if _CANONICAL_UUID.fullmatch(text):
        return text
    return str(uuid.UUID(text))


def format_utc_millis(moment: datetime) -> str:
    """Format as ISO-8601 UTC with milliseconds (truncated), a zero-padded year and a Z."""
    utc = moment.astimezone(UTC)
    # %-formatting takes about half the time of isoformat() plus replace() here.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        utc.year,
        utc.month,
        utc.day,
        utc.hour,
        utc.minute,
        utc.second,
        utc.microsecond // 1000,
    )


def format_utc_seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def epoch_millis(moment: datetime) -> int:
    """Milliseconds since 1970 UTC, truncated toward the past, in exact integer arithmetic."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    days = moment.toordinal() - EPOCH_ORDINAL
    seconds = ((days * 24 + moment.hour) * 60 + moment.minute) * 60 + moment.second
    return seconds * 1000 + moment.microsecond // 1000
