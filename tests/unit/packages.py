"""Valid source rows and F008 packages for the unit tests, plus the example files.

Every builder returns a fresh dict, so a test can change it without affecting others.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CDN_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "unit-test:cdn"))
RESTAURANT_IDS = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"unit-test:restaurant-{n}")) for n in (1, 2)]
SYNC_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "unit-test:sync"))

# Record values that must never show up in a rejection message or an output record.
SECRET_FIRST_NAME = "Evangelina"
SECRET_PIN = "PIN-4471-XQ"


def user_row(index: int = 0, **changes: Any) -> dict[str, Any]:
    """Return an Ares user row, as the Sync-Users-Ares body carries it (PIN included)."""
    row = {
        "employeeId": f"EMP-{20000 + index}",
        "cdnId": CDN_ID,
        "restaurantId": RESTAURANT_IDS[index % len(RESTAURANT_IDS)],
        "firstName": SECRET_FIRST_NAME,
        "lastName": "Villacís Moreira",
        "position": "Gerente de tienda",
        "active": True,
        "updatedAt": "2026-11-05T10:00:00-05:00",
        "pin": SECRET_PIN,
    }
    row.update(changes)
    return row


def artifact(name: str, digest: str, size: int = 18_734_112) -> dict[str, Any]:
    return {"name": name, "sha256": digest, "sizeBytes": size}


def build_row(**changes: Any) -> dict[str, Any]:
    """Return build metadata as MXP FE Build sends it."""
    row = {
        "module": "pos-frontend",
        "version": "2.4.1",
        "buildNumber": 1532,
        "commit": "9a5c1d03a039567e9b3c7197de85da669a5c1d03",
        "builtAt": "2026-11-30T09:15:00-05:00",
        "cdnId": CDN_ID,
        "restaurants": list(RESTAURANT_IDS),
        "artifacts": [
            artifact("pos-frontend-2.4.1.tar.gz", "ab" * 32),
            artifact("pos-frontend-2.4.1.sbom.json", "cd" * 32, 48_211),
        ],
    }
    row.update(changes)
    return row


def printer_row(index: int = 0, **changes: Any) -> dict[str, Any]:
    """Return a network printer row from MXP Printer."""
    row = {
        "printerId": f"PRN-{index:03d}",
        "cdnId": CDN_ID,
        "restaurantId": RESTAURANT_IDS[index % len(RESTAURANT_IDS)],
        "name": f"Cocina {index}",
        "model": "EPSON TM-T88VI",
        "station": "Cocina",
        "connection": {"type": "network", "address": f"prn-{index:03d}.local", "port": 9100},
        "paperWidthMm": 80,
        "active": True,
        "updatedAt": "2026-11-29T18:00:00Z",
    }
    row.update(changes)
    return row


def package(processes: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Wrap process blocks in a valid F008 envelope without chunk or checksum."""
    document = {
        "code": "F008",
        "syncId": SYNC_ID,
        "source": "http",
        "chunkLoad": 10,
        "processes": processes,
    }
    document.update(changes)
    return document


def mixed_package() -> dict[str, Any]:
    """Return a package with one block per default route: builds, users and printers."""
    return package(
        {
            "build_info": {"records": [build_row()]},
            "users_pos": {"mode": "delta", "records": [user_row(0), user_row(1)]},
            "printers": {"records": [printer_row(1)]},
        }
    )


def load_example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
