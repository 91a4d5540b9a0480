"""Output records: what a transformer produces for one facade, before any byte is sent."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

# The form str(uuid.UUID(text)) returns; text already in it needs no parsing.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


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


def canonical_uuid(text: str) -> str:
    """Return a UUID in lower-case hyphenated form; raise ValueError when it is not a UUID."""
    if _CANONICAL_UUID.fullmatch(text):
        return text
    return str(uuid.UUID(text))


def format_utc_millis(moment: datetime) -> str:
    """Format as ISO-8601 UTC with milliseconds (truncated) and a Z suffix."""
    utc = moment.astimezone(UTC)
    if utc.year < 1000:
        # How strftime pads years below 1000 depends on the C library: keep its output there.
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    # %-formatting takes about half the time of an f-string with seven format specs here.
    return "%d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        utc.year,
        utc.month,
        utc.day,
        utc.hour,
        utc.minute,
        utc.second,
        moment.microsecond // 1000,
    )


def epoch_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
