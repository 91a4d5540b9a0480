"""The package checksum: SHA-256 over the RFC 8785 canonical JSON of `processes`."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

CHECKSUM_PREFIX = "sha256:"


def processes_checksum(processes: Any) -> str:
    """Return `sha256:<hex>` of the canonical JSON (RFC 8785) of a package's processes."""
    canonical = rfc8785.dumps(processes)
    return CHECKSUM_PREFIX + hashlib.sha256(canonical).hexdigest()
