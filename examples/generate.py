"""Write the example packages in this folder. Names and ids are invented.

Run `python examples/generate.py` after changing it; the output is deterministic.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CDN_ID = "bc2d8ada-e25e-1bb7-55fe-32d1205ac4af"
RESTAURANTS = [
    "e17d03da-b8b6-f424-febc-3a767b6401bb",
    "4a5c9f10-2d3e-4b6a-9c1d-7e8f9a0b1c2d",
    "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
]
FIRST_NAMES = [
    "Ana",
    "Luis",
    "María",
    "Jorge",
    "Sofía",
    "Diego",
    "Valeria",
    "Andrés",
    "Camila",
    "Mateo",
    "Lucía",
    "Santiago",
    "Paula",
    "Gabriel",
    "Daniela",
    "Tomás",
    "Isabel",
    "Martín",
    "Elena",
    "Joaquín",
]
LAST_NAMES = [
    "Quispe",
    "Andrade",
    "Villacís",
    "Paredes",
    "Zambrano",
    "Cevallos",
    "Moreira",
    "Salazar",
    "Guerrero",
    "Benítez",
    "Naranjo",
    "Espinoza",
    "Ortega",
    "Jaramillo",
    "Cárdenas",
    "Pazmiño",
    "Aguirre",
    "Montalvo",
]
POSITIONS = ["Cajero", "Cocinero", "Gerente de tienda", "Asistente de cocina", "Supervisor"]


def stable_uuid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"example:{name}"))


def users(count: int) -> list[dict[str, Any]]:
    rng = random.Random(20261204)
    rows = []
    for index in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        rows.append(
            {
                "employeeId": f"EMP-{10000 + index}",
                "cdnId": CDN_ID,
                "restaurantId": RESTAURANTS[index % len(RESTAURANTS)],
                "firstName": first,
                "lastName": last,
                "position": rng.choice(POSITIONS),
                "active": rng.random() > 0.1,
                "updatedAt": f"2026-11-{rng.randint(1, 30):02d}T{rng.randint(8, 22):02d}:"
                f"{rng.randint(0, 59):02d}:00-05:00",
                # Ares sends the PIN; T121 drops it, so it never reaches a facade.
                "pin": f"{rng.randint(0, 9999):04d}",
            }
        )
    return rows


def build(module: str, version: str, number: int) -> dict[str, Any]:
    digest = uuid.uuid5(uuid.NAMESPACE_URL, f"{module}{number}").hex * 2
    return {
        "module": module,
        "version": version,
        "buildNumber": number,
        "commit": digest[:40],
        "builtAt": "2026-11-30T09:15:00-05:00",
        "cdnId": CDN_ID,
        "restaurants": RESTAURANTS,
        "artifacts": [
            {"name": f"{module}-{version}.tar.gz", "sha256": digest, "sizeBytes": 18_734_112},
            {"name": f"{module}-{version}.sbom.json", "sha256": digest[::-1], "sizeBytes": 48_211},
        ],
    }


def printer(index: int, station: str, restaurant: str) -> dict[str, Any]:
    return {
        "printerId": f"PRN-{index:03d}",
        "cdnId": CDN_ID,
        "restaurantId": restaurant,
        "name": f"{station.capitalize()} {index}",
        "model": "EPSON TM-T88VI",
        "station": station,
        "connection": {"type": "network", "address": f"prn-{index:03d}.local", "port": 9100},
        "paperWidthMm": 80,
        "active": True,
        "updatedAt": "2026-11-29T18:00:00Z",
    }


def generic() -> dict[str, Any]:
    return {
        "code": "F008",
        "syncId": stable_uuid("sync-generic"),
        "source": "fe-build",
        "chunkLoad": 10,
        "processes": {
            "build_info": {
                "records": [
                    build("pos-frontend", "2.4.1", 1532),
                    build("kds-frontend", "1.9.0", 877),
                ]
            },
            "printers": {
                "records": [
                    printer(i, s, RESTAURANTS[i % 3])
                    for i, s in enumerate(["cocina", "caja", "barra", "cocina"], start=1)
                ]
            },
        },
    }


def users_ares() -> dict[str, Any]:
    return {
        "code": "F008",
        "syncId": stable_uuid("sync-users-ares"),
        "source": "http",
        "chunkLoad": 100,
        "processes": {"users_pos": {"mode": "delta", "records": users(250)}},
    }


def invalid_examples() -> dict[str, Any]:
    """Build one package per rejection reason that JSON can express, and per transformer."""
    base = generic()
    small = {**base, "syncId": stable_uuid("invalid")}

    def variant(**changes: Any) -> dict[str, Any]:
        package = copy.deepcopy(small)
        package.update(changes)
        return package

    broken_build = copy.deepcopy(small)
    broken_build["processes"]["build_info"]["records"][0]["artifacts"][0]["sha256"] = "xyz"
    broken_user = users_ares()
    broken_user["syncId"] = stable_uuid("invalid-user")
    broken_user["processes"]["users_pos"]["records"] = users(3)
    broken_user["processes"]["users_pos"]["records"][1]["updatedAt"] = "yesterday"
    missing_field = copy.deepcopy(small)
    del missing_field["processes"]["printers"]["records"][0]["updatedAt"]

    return {
        "invalid_structure": {"code": "F008", "syncId": small["syncId"], "processes": []},
        "invalid_code": variant(code="F009"),
        "invalid_sync_id": variant(syncId="sync-42"),
        "unknown_source": variant(source="mxp-legacy"),
        "chunk_load_out_of_range": variant(chunkLoad=0),
        "no_processes": variant(processes={}),
        "unknown_process": variant(processes={"menu_items": {"records": [{"id": 1}]}}),
        "too_many_records": variant(chunkLoad=1),
        "invalid_chunk": variant(chunk={"index": 3, "count": 3}),
        "checksum_mismatch": variant(checksum="sha256:" + "0" * 64),
        "invalid_record": missing_field,
        "t080_failure": broken_build,
        "t121_failure": broken_user,
    }


def write(path: Path, document: Any) -> None:
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    write(HERE / "sync-generic.json", generic())
    write(HERE / "sync-users-ares.json", users_ares())
    for name, package in invalid_examples().items():
        write(HERE / "invalid" / f"{name}.json", package)
    (HERE / "invalid" / "invalid_json.json").write_text(
        '{"code": "F008", "syncId": \n', encoding="utf-8"
    )
    (HERE / "invalid" / "empty_value.json").write_text("", encoding="utf-8")


if __name__ == "__main__":
    main()
