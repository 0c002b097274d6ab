"""Barn: plain compute, cloud-neutral inputs. Today: GPU dev boxes that stop themselves when idle."""

from __future__ import annotations

import csv
import zoneinfo
from functools import cache
from pathlib import Path
from typing import Iterator

from pydantic import Field

from components.breeding_ground import catalog
from components.fence import regions
from components.schema import Context, Key, Problem, Spec
from components.trough.spec import Access

# Clouds whose VM schedules name time zones their own way: IANA name -> the cloud's (Azure auto-shutdown takes
# Windows time zone ids).
TIME_ZONE_TABLES = {"azure": Path(__file__).parent / "windows_time_zones.csv"}


@cache
def _time_zone_table(cloud: str) -> dict[str, str] | None:
    path = TIME_ZONE_TABLES.get(cloud)
    if path is None:
        return None
    with open(path, newline="") as f:
        return {row["iana"]: row["windows"] for row in csv.DictReader(f)}


def schedule_time_zone(cloud: str, iana: str) -> str:
    """The time zone name a cloud's VM schedule takes for an IANA zone (checked at load)."""
    table = _time_zone_table(cloud)
    return iana if table is None else table[iana]


class BarnSpec(Spec):
    gpu: str = "t4"
    """GPU model of the dev box (from the GPU catalog)."""
    gpus: int = Field(default=1, ge=1)
    """GPUs on the dev box."""
    idle_minutes: int = Field(default=60, ge=10, le=1440)
    """Stop the box after this many minutes of low CPU and GPU use and no login session, so a forgotten box does not run all weekend."""
    disk_gb: int = Field(default=200, ge=50, le=16384)
    """Encrypted root volume size."""
    spot: bool = False
    """Run the box on spot capacity (cheaper; may be interrupted)."""
    nightly_stop: str | None = Field(default="21:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    """Backstop: stop the box every day at this time (HH:MM in time_zone), busy or not. null: no nightly stop."""
    time_zone: str | None = Field(default=None, pattern=r"^[A-Za-z]+(/[A-Za-z0-9_+-]+)*$")
    """IANA time zone of nightly_stop, e.g. Europe/Berlin. Default: the stack region's (regions.csv), so 21:00 is evening where the farm is, not 21:00 UTC."""
    troughs: dict[Key, Access] | None = None
    """Troughs the box may use and how (read / read-write). Default: by purpose, as for teams."""

    def problems(self, ctx: Context) -> Iterator[Problem]:
        if self.time_zone is not None and self.time_zone not in zoneinfo.available_timezones():
            yield Problem("time_zone", self.time_zone, "an IANA time zone such as UTC or Europe/Berlin")
        table = _time_zone_table(ctx.cloud)
        if table is not None and self.stop_time_zone(ctx.cloud, ctx.region) not in table:
            yield Problem("time_zone", self.stop_time_zone(ctx.cloud, ctx.region),
                          f"a time zone {ctx.cloud} schedules know ({TIME_ZONE_TABLES[ctx.cloud].name}): {', '.join(sorted(table))}")
        offered = catalog.gpus_on(ctx.cloud)
        if self.gpu not in offered:
            yield Problem("gpu", self.gpu, f"a GPU {ctx.cloud} offers: {', '.join(offered)}")
        elif self.gpus not in catalog.sizes(ctx.cloud, self.gpu):
            yield Problem("gpus", self.gpus, f"one of {', '.join(map(str, catalog.sizes(ctx.cloud, self.gpu)))} for {self.gpu} on {ctx.cloud}")
        else:
            missing = catalog.not_offered(ctx.cloud, ctx.region, self.catalog_types(ctx.cloud))
            if missing:
                yield Problem("gpu", self.gpu, f"a GPU offered in {ctx.region} ({self.gpu} x{self.gpus}: {missing})")
            else:
                yield from catalog.zone_problems(ctx.cloud, ctx.region, ctx.zones, self.catalog_types(ctx.cloud)[:1], self.gpus, "gpu", self.gpu)

    def catalog_types(self, cloud: str) -> list[str]:
        """Instance types with the box's GPUs, smallest first."""
        return [i.instance_type for i in catalog.instances(cloud, self.gpu, self.gpus)]

    def instance_type(self, cloud: str, region: str) -> str:
        """The smallest catalog type with the box's GPUs that is offered in the region."""
        types = catalog.in_region(cloud, region, self.catalog_types(cloud))
        if not types:
            raise ValueError(f"barn gpu: got {self.gpu} x{self.gpus}; allowed: a GPU offered in {region} (offered.csv)")
        return types[0]

    def zone(self, cloud: str, machine: str, region: str, zones: list[str]) -> str:
        """The first of `zones` (the stack's, or every zone of the region) selling the machine with its GPUs."""
        offering = catalog.zones_offering(cloud, machine, self.gpus, region)
        usable = [z for z in zones if offering is None or z in offering]
        if not usable:
            raise ValueError(f"barn gpu: got {self.gpu} x{self.gpus}; allowed: a GPU sold in one of the zones {', '.join(zones)}")
        return usable[0]

    def stop_time_zone(self, cloud: str, region: str) -> str:
        """The time zone nightly_stop is read in: the stack's, or the region's."""
        return self.time_zone or regions.time_zone(cloud, region)
