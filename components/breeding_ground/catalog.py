"""The instance catalog, per cloud: which types carry which GPU (gpu_catalog.csv), the CPU types a
system pool may use (cpu_catalog.csv), and the regions each type is offered in (offered.csv).

Data, not code: a new instance type is a new CSV row, with its source. Lookups are pure and cached.
offered.csv lists, per type, the regions its source has it in; a region the source has nothing for
(e.g. Azure regions outside the US in the SkyPilot v6 catalog) is not covered: nothing is refused there.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from components.schema import Problem

CATALOG_FILE = Path(__file__).with_name("gpu_catalog.csv")
CPU_FILE = Path(__file__).with_name("cpu_catalog.csv")
OFFERED_FILE = Path(__file__).with_name("offered.csv")


@dataclass(frozen=True)
class GpuInstance:
    cloud: str
    instance_type: str
    gpu: str
    gpus: int
    vcpus: int
    memory_gib: int
    fabric: bool
    """Has a high-speed GPU fabric (AWS EFA, Azure InfiniBand, GCP GPUDirect)."""
    fabric_interfaces: int
    """AWS: EFA interfaces the instance type supports (what a node offers as `vpc.amazonaws.com/efa`); 0 elsewhere."""
    accelerator: str
    """GCP accelerator type name, for node pools that must name it; empty elsewhere."""


@lru_cache(maxsize=1)
def all_instances() -> tuple[GpuInstance, ...]:
    with CATALOG_FILE.open(newline="") as handle:
        return tuple(
            GpuInstance(
                cloud=row["cloud"], instance_type=row["instance_type"], gpu=row["gpu"], gpus=int(row["gpus"]),
                vcpus=int(row["vcpus"]), memory_gib=int(row["memory_gib"]), fabric=row["fabric"] == "yes",
                fabric_interfaces=int(row["fabric_interfaces"] or 0),
                accelerator=row["accelerator"],
            )
            for row in csv.DictReader(handle)
        )


def gpus_on(cloud: str) -> list[str]:
    return sorted({i.gpu for i in all_instances() if i.cloud == cloud})


def sizes(cloud: str, gpu: str) -> list[int]:
    return sorted({i.gpus for i in all_instances() if i.cloud == cloud and i.gpu == gpu})


def instances(cloud: str, gpu: str, gpus: int) -> list[GpuInstance]:
    """Every instance type with exactly `gpus` of `gpu`, smallest first (several widen spot capacity)."""
    found = [i for i in all_instances() if i.cloud == cloud and i.gpu == gpu and i.gpus == gpus]
    return sorted(found, key=lambda i: (i.vcpus, i.instance_type))


def instance(cloud: str, instance_type: str) -> GpuInstance | None:
    return next((i for i in all_instances() if i.cloud == cloud and i.instance_type == instance_type), None)


@dataclass(frozen=True)
class CpuInstance:
    cloud: str
    instance_type: str
    vcpus: int
    memory_gib: int
    arch: str
    """x86_64 or arm64: picks the node image."""
    system_default: bool


@lru_cache(maxsize=1)
def cpu_instances() -> tuple[CpuInstance, ...]:
    with CPU_FILE.open(newline="") as handle:
        return tuple(CpuInstance(row["cloud"], row["instance_type"], int(row["vcpus"]), int(row["memory_gib"]), row["arch"],
                                 row["system_default"] == "yes") for row in csv.DictReader(handle))


def cpu_instance(cloud: str, instance_type: str) -> CpuInstance | None:
    return next((i for i in cpu_instances() if i.cloud == cloud and i.instance_type == instance_type), None)


def cpu_types(cloud: str) -> list[str]:
    return sorted(i.instance_type for i in cpu_instances() if i.cloud == cloud)


def system_default(cloud: str) -> str:
    (row,) = [i for i in cpu_instances() if i.cloud == cloud and i.system_default]
    return row.instance_type


@lru_cache(maxsize=1)
def _offered() -> dict[tuple[str, str], frozenset[str]]:
    with OFFERED_FILE.open(newline="") as handle:
        return {(row["cloud"], row["instance_type"]): frozenset(row["regions"].split()) for row in csv.DictReader(handle)}


def covered(cloud: str, region: str) -> bool:
    """Whether offered.csv knows what `region` offers (its source lists anything there)."""
    return any(region in regions for (c, _), regions in _offered().items() if c == cloud)


def offered_in(cloud: str, instance_type: str) -> list[str]:
    """Regions `instance_type` is offered in, per offered.csv."""
    return sorted(_offered().get((cloud, instance_type), frozenset()))


def offered(cloud: str, instance_type: str, region: str) -> bool:
    """True when the type is offered in the region, or when nothing is known about the region."""
    return not covered(cloud, region) or region in _offered().get((cloud, instance_type), frozenset())


def in_region(cloud: str, region: str, types: list[str]) -> list[str]:
    """Those of `types` offered in `region` (all of them where nothing is known about the region)."""
    return [t for t in types if offered(cloud, t, region)]


def not_offered(cloud: str, region: str, types: list[str]) -> str | None:
    """None if any of `types` is offered in `region` (or nothing is known there); otherwise the text an
    error ends with: the types and the regions that have them."""
    if not types or in_region(cloud, region, types):
        return None
    where = sorted({r for t in types for r in offered_in(cloud, t)})
    verb = "is" if len(types) == 1 else "are"
    return f"{', '.join(types)} {verb} offered in: {', '.join(where) or 'no region listed in offered.csv'}"


ZONES_FILE = Path(__file__).with_name("offered_zones.csv")


@lru_cache(maxsize=1)
def _zones() -> dict[tuple[str, str, int, str], tuple[str, ...]]:
    if not ZONES_FILE.exists():
        return {}
    with ZONES_FILE.open(newline="") as handle:
        return {(row["cloud"], row["instance_type"], int(row["gpus"]), row["region"]): tuple(row["zones"].split())
                for row in csv.DictReader(handle)}


def zones_offering(cloud: str, instance_type: str, gpus: int, region: str) -> list[str] | None:
    """The zones of `region` where `instance_type` with `gpus` GPUs is offered (offered_zones.csv), or None
    when the file knows nothing about that type in that region. GCP sells each GPU in some zones of a
    region only: a node pool or VM placed in another zone never gets one."""
    found = _zones().get((cloud, instance_type, gpus, region))
    return list(found) if found is not None else None


def zone_problems(cloud: str, region: str, zones: tuple[str, ...] | list[str], types: list[str], gpus: int, path: str,
                  value: object) -> Iterator[Problem]:
    """A problem when none of `zones` sells the first of `types` offered in the region (what a pool or box
    launches), per offered_zones.csv; nothing when the data says nothing."""
    launched = in_region(cloud, region, types)[:1]
    for instance_type in launched:
        offering = zones_offering(cloud, instance_type, gpus, region)
        if offering is not None and zones and not set(offering) & set(zones):
            yield Problem(path, value, f"a GPU sold in the stack's zones ({', '.join(zones)}): {instance_type} is sold in "
                                       f"{', '.join(offering) or 'no zone of ' + region}")
