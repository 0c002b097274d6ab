"""The GPU instance catalog: which instance types carry which GPU, per cloud (gpu_catalog.csv).

Data, not code: a new instance type is a new CSV row. Lookups are pure and cached.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CATALOG_FILE = Path(__file__).with_name("gpu_catalog.csv")


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
