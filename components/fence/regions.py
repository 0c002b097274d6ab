"""Regions and zones each cloud has (regions.csv): data with a source and date per row, read by the
stack schema so a region or zone that does not exist fails at load. A region missing here is one
dragonfarm has not listed yet: add its row (with its zones and source) to use it.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

REGIONS_FILE = Path(__file__).with_name("regions.csv")


@lru_cache(maxsize=1)
def _table() -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    with REGIONS_FILE.open(newline="") as handle:
        for row in csv.DictReader(handle):
            out.setdefault(row["cloud"], {})[row["region"]] = row["zones"].split()
    return out


def regions(cloud: str) -> list[str]:
    return sorted(_table().get(cloud, {}))


def zones(cloud: str, region: str) -> list[str] | None:
    """The region's zones ([] for a region without zones), or None for a region not listed."""
    return _table().get(cloud, {}).get(region)
