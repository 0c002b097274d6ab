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
def _rows() -> dict[str, dict[str, dict[str, str]]]:
    out: dict[str, dict[str, dict[str, str]]] = {}
    with REGIONS_FILE.open(newline="") as handle:
        for row in csv.DictReader(handle):
            out.setdefault(row["cloud"], {})[row["region"]] = row
    return out


def _table() -> dict[str, dict[str, list[str]]]:
    return {cloud: {region: row["zones"].split() for region, row in by_region.items()} for cloud, by_region in _rows().items()}


def regions(cloud: str) -> list[str]:
    return sorted(_table().get(cloud, {}))


def zones(cloud: str, region: str) -> list[str] | None:
    """The region's zones ([] for a region without zones), or None for a region not listed."""
    return _table().get(cloud, {}).get(region)


def time_zone(cloud: str, region: str) -> str:
    """The IANA time zone where the region's data centres are (regions.csv): the default for local-time
    schedules such as a dev box's nightly stop. UTC for a region not listed."""
    row = _rows().get(cloud, {}).get(region)
    return row["time_zone"] if row else "UTC"
