"""The price catalog: versioned CSV files under dragonfarm/prices/, every row with source and date.

    compute.csv  cloud, region, sku, on_demand, spot_low, spot_high (USD/hour; spot blank = unknown)
    spot.csv     cloud, region, sku, zone, spot (USD/hour per zone, where the source prices zones apart)
    storage.csv  cloud, region, storage_class, usd_per_gb_month, min_days
    fees.csv     cloud, region, item, unit, usd (control plane, NAT, public IPs, keys, disks, egress)

`dragonfarm prices refresh` rebuilds compute.csv rows from the clouds' public price lists.
A missing row raises MissingPrice: the estimate then lists the resource as unpriced, never as 0.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PRICES_DIR = Path(__file__).with_name("prices")


class MissingPrice(LookupError):
    pass


@dataclass(frozen=True)
class ComputePrice:
    on_demand: float
    spot_low: float | None
    spot_high: float | None
    source: str
    zone_spots: tuple[float, ...] = ()
    """Spot price per zone of the region (spot.csv), where the source has them."""

    @property
    def spot(self) -> float | None:
        """The typical spot price: the median over the region's zones (one dear zone would drag a low/high
        midpoint up); a region priced as one figure has low == high. Zone ids map to a stack's zone names
        differently in every AWS account, so the median is over all the region's zones."""
        if self.zone_spots:
            return statistics.median(self.zone_spots)
        if self.spot_low is None or self.spot_high is None:
            return None
        return (self.spot_low + self.spot_high) / 2


def _num(text: str) -> float | None:
    return float(text) if text.strip() else None


@dataclass(frozen=True)
class Catalog:
    compute: dict[tuple[str, str, str], ComputePrice]
    storage: dict[tuple[str, str, str], float]
    fees: dict[tuple[str, str, str], float]

    def machine(self, cloud: str, region: str, sku: str) -> ComputePrice:
        try:
            return self.compute[(cloud, region, sku)]
        except KeyError:
            raise MissingPrice(f"no price for {sku} in {cloud} {region} (dragonfarm/prices/compute.csv)") from None

    def storage_class(self, cloud: str, region: str, storage_class: str) -> float:
        try:
            return self.storage[(cloud, region, storage_class)]
        except KeyError:
            raise MissingPrice(f"no price for storage class {storage_class} in {cloud} {region} (storage.csv)") from None

    def fee(self, cloud: str, region: str, item: str) -> float:
        try:
            return self.fees[(cloud, region, item)]
        except KeyError:
            raise MissingPrice(f"no price for {item} in {cloud} {region} (fees.csv)") from None


def _rows(name: str, folder: Path) -> list[dict[str, str]]:
    with (folder / name).open(newline="") as handle:
        return list(csv.DictReader(handle))


def load(folder: Path = PRICES_DIR) -> Catalog:
    zones: dict[tuple[str, str, str], list[float]] = {}
    if (folder / "spot.csv").exists():
        for r in _rows("spot.csv", folder):
            zones.setdefault((r["cloud"], r["region"], r["sku"]), []).append(float(r["spot"]))
    return Catalog(
        compute={(r["cloud"], r["region"], r["sku"]): ComputePrice(float(r["on_demand"]), _num(r["spot_low"]), _num(r["spot_high"]),
                                                                   r["source"], tuple(zones.get((r["cloud"], r["region"], r["sku"]), ())))
                 for r in _rows("compute.csv", folder)},
        storage={(r["cloud"], r["region"], r["storage_class"]): float(r["usd_per_gb_month"]) for r in _rows("storage.csv", folder)},
        fees={(r["cloud"], r["region"], r["item"]): float(r["usd"]) for r in _rows("fees.csv", folder)},
    )


@lru_cache(maxsize=1)
def default() -> Catalog:
    return load()
