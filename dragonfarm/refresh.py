"""`dragonfarm prices refresh`: rebuild compute.csv rows from the clouds' public price lists.

- AWS on-demand: the EC2 price list offer file of the region (public, no credentials);
  AWS spot: the public spot price feed behind the EC2 spot pricing page (one price per region).
- Azure: the Retail Prices API (public), one query per SKU; "Spot" meters are spot prices.
- GCP: the Cloud Billing Catalog API (needs an API key: GCP_API_KEY). A VM's price is composed
  from its family's per-vCPU and per-GB prices plus its GPUs, as GCP bills them.

Fetching is injected (`fetch(url) -> bytes`), so the parsers are tested on recorded responses.
Rows that cannot be refreshed keep their old values; the command says which.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from components.breeding_ground import catalog as gpu_catalog
from components.fence import regions as fence_regions
from dragonfarm.pricing import PRICES_DIR

Fetch = Callable[[str], bytes]

AWS_OFFER = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/{region}/index.json"
AWS_SPOT = "https://website.spot.ec2.aws.a2z.com/spot.json"
AZURE_RETAIL = "https://prices.azure.com/api/retail/prices?$filter={filter}"
GCP_SKUS = "https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus?key={key}&pageSize=5000{page}"

# GCP bills VM families per vCPU and per GB of RAM; these are the SKU description stems.
GCP_FAMILIES = {"a2": "A2 Instance", "a3": "A3 Instance", "g2": "G2 Instance", "n1": "N1 Predefined Instance",
                "e2": "E2 Instance"}
GCP_GPUS = {"nvidia-tesla-a100": "Nvidia Tesla A100 GPU", "nvidia-a100-80gb": "Nvidia Tesla A100 80GB GPU",
            "nvidia-h100-80gb": "Nvidia H100 80GB GPU", "nvidia-l4": "Nvidia L4 GPU", "nvidia-tesla-t4": "Nvidia Tesla T4 GPU"}
# vCPU and GB of the non-GPU machine types the blueprints use (GPU types come from the GPU catalog).
GCP_SHAPES = {"e2-standard-4": (4, 16)}


@dataclass
class Price:
    on_demand: float | None = None
    spot: float | None = None


def http_get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "dragonfarm-prices-refresh"})
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 (https URLs above)
        return response.read()


def read_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Write a catalog CSV back with the columns it has (the header of the file as it stands)."""
    fields = next(csv.reader(io.StringIO(path.read_text())))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue())


# ---- AWS -----------------------------------------------------------------------------------------


def aws_prices(region: str, skus: Iterable[str], fetch: Fetch) -> dict[str, Price]:
    wanted = set(skus)
    offer = json.loads(fetch(AWS_OFFER.format(region=region)))
    out: dict[str, Price] = {}
    for sku_id, product in offer.get("products", {}).items():
        a = product.get("attributes", {})
        if (a.get("instanceType") in wanted and a.get("operatingSystem") == "Linux" and a.get("tenancy") == "Shared"
                and a.get("preInstalledSw") == "NA" and a.get("capacitystatus") == "Used"):
            for term in offer["terms"]["OnDemand"].get(sku_id, {}).values():
                for dimension in term["priceDimensions"].values():
                    out.setdefault(a["instanceType"], Price()).on_demand = float(dimension["pricePerUnit"]["USD"])
    text = fetch(AWS_SPOT).decode()
    if text.startswith("callback("):
        text = text[len("callback("):].rstrip().rstrip(";").rstrip(")")
    for reg in json.loads(text)["config"]["regions"]:
        if reg["region"] != region:
            continue
        for family in reg["instanceTypes"]:
            for size in family["sizes"]:
                if size["size"] in wanted:
                    for column in size["valueColumns"]:
                        if column["name"] == "linux" and column["prices"].get("USD") not in (None, "N/A*"):
                            out.setdefault(size["size"], Price()).spot = float(column["prices"]["USD"])
    return out


AWS_S3_OFFER = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonS3/current/{region}/index.json"
# S3 storage classes by the usage type of their storage SKU (the part after the region code, e.g. USW2-):
# storage.csv class name and the minimum days an object is billed in it.
S3_USAGE_TYPES = {"TimedStorage-ByteHrs": ("STANDARD", 0), "TimedStorage-SIA-ByteHrs": ("STANDARD_IA", 30),
                  "TimedStorage-GlacierByteHrs": ("GLACIER", 90), "TimedStorage-GDA-ByteHrs": ("DEEP_ARCHIVE", 180)}


def aws_storage_prices(region: str, fetch: Fetch) -> dict[str, float]:
    """USD per GB-month of the first volume tier of each S3 storage class the farm uses, from the region's
    AmazonS3 offer file (public, no credentials)."""
    offer = json.loads(fetch(AWS_S3_OFFER.format(region=region)))
    out: dict[str, float] = {}
    for sku_id, product in offer.get("products", {}).items():
        usage = product.get("attributes", {}).get("usagetype", "")
        kind = next((k for k in S3_USAGE_TYPES if usage == k or usage.endswith(f"-{k}")), None)
        if kind is None:
            continue
        for term in offer["terms"]["OnDemand"].get(sku_id, {}).values():
            for dimension in term["priceDimensions"].values():
                if dimension.get("beginRange", "0") == "0":
                    out[S3_USAGE_TYPES[kind][0]] = float(dimension["pricePerUnit"]["USD"])
    return out


# ---- Azure ---------------------------------------------------------------------------------------


def azure_prices(region: str, skus: Iterable[str], fetch: Fetch) -> dict[str, Price]:
    out: dict[str, Price] = {}
    for sku in skus:
        query = f"serviceName eq 'Virtual Machines' and armRegionName eq '{region}' and armSkuName eq '{sku}'"
        url: str | None = AZURE_RETAIL.format(filter=urllib.parse.quote(query))
        while url:
            page = json.loads(fetch(url))
            for item in page.get("Items", []):
                if item.get("type") != "Consumption" or "Windows" in item.get("productName", "") or "Low Priority" in item.get("meterName", ""):
                    continue
                price = out.setdefault(sku, Price())
                if item.get("meterName", "").endswith("Spot"):
                    price.spot = float(item["retailPrice"])
                else:
                    price.on_demand = float(item["retailPrice"])
            url = page.get("NextPageLink")
    return out


# Blob storage (General Block Blob v2) per access tier and redundancy: storage.csv class names ("Hot",
# "Hot_ZRS"...) and the minimum days a blob is billed in the tier (early deletion).
AZURE_BLOB_DAYS = {"Hot": 0, "Cool": 30, "Cold": 90, "Archive": 180}


def azure_storage_prices(region: str, fetch: Fetch) -> dict[str, float]:
    """USD per GB-month of the first (0-50 TB) tier of each blob access tier and redundancy in `region`."""
    query = (f"serviceName eq 'Storage' and armRegionName eq '{region}' and productName eq 'General Block Blob v2'")
    url: str | None = AZURE_RETAIL.format(filter=urllib.parse.quote(query))
    out: dict[str, float] = {}
    while url:
        page = json.loads(fetch(url))
        for item in page.get("Items", []):
            meter = item.get("meterName", "")
            if (item.get("type") != "Consumption" or not meter.endswith(" Data Stored")
                    or float(item.get("tierMinimumUnits", 0)) != 0):
                continue
            tier, redundancy = (meter.removesuffix(" Data Stored").split(" ") + [""])[:2]
            if tier in AZURE_BLOB_DAYS and redundancy in ("LRS", "ZRS"):
                out[tier if redundancy == "LRS" else f"{tier}_ZRS"] = float(item["retailPrice"])
        url = page.get("NextPageLink")
    return out


def _fetch_storage(cloud: str, region: str, fetch: Fetch) -> tuple[dict[str, tuple[float, int]], str]:
    """(USD per GB-month, minimum days) per storage class from the cloud's public price list, and the source."""
    if cloud == "aws":
        minimum = dict(S3_USAGE_TYPES.values())
        return {c: (usd, minimum[c]) for c, usd in aws_storage_prices(region, fetch).items()}, AWS_S3_OFFER.format(region=region)
    return ({c: (usd, AZURE_BLOB_DAYS[c.split("_")[0]]) for c, usd in azure_storage_prices(region, fetch).items()},
            "Azure Retail Prices API (General Block Blob v2, first 50 TB)")


def refresh_storage(regions: Iterable[str], fetch: Fetch = http_get, folder: Path = PRICES_DIR, today: str | None = None,
                    cloud: str = "azure") -> int:
    """storage.csv rows of `cloud` (azure: blob tiers from the Retail Prices API; aws: S3 classes from the
    AmazonS3 offer file) for `regions`; returns rows written."""
    path = folder / "storage.csv"
    rows = read_rows(path)
    today = today or dt.date.today().isoformat()
    written = 0
    for region in regions:
        found, source = _fetch_storage(cloud, region, fetch)
        for storage_class, (usd, days) in sorted(found.items()):
            row = next((r for r in rows if (r["cloud"], r["region"], r["storage_class"]) == (cloud, region, storage_class)), None)
            if row is None:
                row = {"cloud": cloud, "region": region, "storage_class": storage_class}
                rows.append(row)
            row.update(usd_per_gb_month=f"{usd:g}", min_days=str(days), source=source, date=today)
            written += 1
    rows.sort(key=lambda r: (r["cloud"], r["region"], r["storage_class"]))
    write_rows(path, rows)
    return written


# ---- GCP -----------------------------------------------------------------------------------------


def _unit_price(sku: dict) -> float:
    rate = sku["pricingInfo"][0]["pricingExpression"]["tieredRates"][-1]["unitPrice"]
    return int(rate.get("units", "0")) + rate.get("nanos", 0) / 1e9


def gcp_prices(region: str, skus: Iterable[str], fetch: Fetch, api_key: str) -> dict[str, Price]:
    parts: dict[tuple[str, bool], float] = {}  # (description stem + Core/Ram/GPU, spot) -> USD per unit-hour
    token = ""
    while True:
        page = json.loads(fetch(GCP_SKUS.format(key=api_key, page=f"&pageToken={token}" if token else "")))
        for sku in page.get("skus", []):
            if region not in sku.get("serviceRegions", []):
                continue
            description = sku["description"]
            spot = description.startswith("Spot Preemptible ")
            stem = description.removeprefix("Spot Preemptible ").split(" running in ")[0]
            parts[(stem, spot)] = _unit_price(sku)
        token = page.get("nextPageToken", "")
        if not token:
            break
    out: dict[str, Price] = {}
    for sku in skus:
        family = GCP_FAMILIES.get(sku.split("-")[0])
        gpu = gpu_catalog.instance("gcp", sku)
        vcpus, memory = (gpu.vcpus, gpu.memory_gib) if gpu else GCP_SHAPES.get(sku, (0, 0))
        if family is None or not vcpus:
            continue
        price = Price()
        for spot in (False, True):
            try:
                total = vcpus * parts[(f"{family} Core", spot)] + memory * parts[(f"{family} Ram", spot)]
                if gpu is not None:
                    total += gpu.gpus * parts[(GCP_GPUS[gpu.accelerator], spot)]
            except KeyError:
                continue
            if spot:
                price.spot = round(total, 4)
            else:
                price.on_demand = round(total, 4)
        if price.on_demand is not None:
            out[sku] = price
    return out


# ---- the catalog file ----------------------------------------------------------------------------


def _fetch_prices(cloud: str, region: str, skus: list[str], fetch: Fetch, gcp_api_key: str | None) -> tuple[dict[str, Price], str]:
    """Prices of `skus` from the cloud's public price list, and the source to record."""
    if cloud == "aws":
        return aws_prices(region, skus, fetch), f"{AWS_OFFER.format(region=region)} + {AWS_SPOT}"
    if cloud == "azure":
        return azure_prices(region, skus, fetch), "Azure Retail Prices API"
    key = gcp_api_key or os.environ.get("GCP_API_KEY")
    if not key:
        raise ValueError("GCP_API_KEY: got nothing; allowed: a Google Cloud API key (the Cloud Billing Catalog API needs one)")
    return gcp_prices(region, skus, fetch, key), "Cloud Billing Catalog API (services/6F81-5844-456A)"


def refresh(clouds: Iterable[str], fetch: Fetch = http_get, folder: Path = PRICES_DIR, today: str | None = None,
            gcp_api_key: str | None = None, regions: Iterable[str] | None = None,
            offered_file: Path | None = None) -> tuple[int, list[str]]:
    """Refresh compute.csv in `folder` for `clouds` in every region regions.csv lists for them (or only
    `regions`); returns (rows updated, rows kept with the reason). Refreshed rows carry the feed's one
    spot price per region, so their per-zone rows in spot.csv are dropped."""
    path = folder / "compute.csv"
    rows = read_rows(path)
    today = today or dt.date.today().isoformat()
    only = set(regions) if regions is not None else None
    updated, kept, refreshed = 0, [], set()
    listed: dict[tuple[str, str], tuple[set[str], str]] = {}
    for cloud in clouds:
        for region in fence_regions.regions(cloud):
            if only is not None and region not in only:
                continue
            skus = sorted({r["sku"] for r in rows if r["cloud"] == cloud and r["region"] == region}
                          | {i.instance_type for i in gpu_catalog.all_instances() if i.cloud == cloud}
                          | {i.instance_type for i in gpu_catalog.cpu_instances() if i.cloud == cloud})
            found, source = _fetch_prices(cloud, region, skus, fetch, gcp_api_key)
            listed[(cloud, region)] = ({sku for sku, price in found.items() if price.on_demand is not None}, source)
            for sku in skus:
                price = found.get(sku)
                row = next((r for r in rows if (r["cloud"], r["region"], r["sku"]) == (cloud, region, sku)), None)
                if price is None or price.on_demand is None:
                    if row is not None:
                        kept.append(f"{cloud} {region} {sku}: not in the price list; old row kept")
                    continue
                if row is None:
                    row = {"cloud": cloud, "region": region, "sku": sku}
                    rows.append(row)
                spot = "" if price.spot is None else f"{price.spot:g}"
                row.update(on_demand=f"{price.on_demand:g}", spot_low=spot, spot_high=spot, source=source, date=today)
                refreshed.add((cloud, region, sku))
                updated += 1
    rows.sort(key=lambda r: (r["cloud"], r["region"], r["sku"]))
    write_rows(path, rows)
    spot_path = folder / "spot.csv"
    if spot_path.exists() and refreshed:
        write_rows(spot_path, [r for r in read_rows(spot_path) if (r["cloud"], r["region"], r["sku"]) not in refreshed])
    # offered.csv is refreshed with the real catalog, or where the caller says (tests pass a copy).
    target = offered_file or (gpu_catalog.OFFERED_FILE if folder == PRICES_DIR else None)
    if target is not None:
        _refresh_offered(listed, target, today)
    return updated, kept


def _refresh_offered(listed: dict[tuple[str, str], tuple[set[str], str]], path: Path, today: str) -> None:
    """offered.csv from the same price lists: a catalog type is offered in a refreshed region exactly when the
    region's price list sells it (an AWS offer file lists what the region sells, the Azure Retail API likewise)."""
    rows = read_rows(path)
    for (cloud, region), (skus, source) in listed.items():
        for row in (r for r in rows if r["cloud"] == cloud):
            regions = set(row["regions"].split())
            now = regions | {region} if row["instance_type"] in skus else regions - {region}
            if now != regions:
                row.update(regions=" ".join(sorted(now)), source=source, checked=today)
    write_rows(path, rows)
