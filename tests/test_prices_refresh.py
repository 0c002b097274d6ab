"""`dragonfarm prices refresh` parsed on recorded price-list responses (tests/fixtures/prices/)."""

from __future__ import annotations

import csv
import shutil

import pytest

from dragonfarm import pricing, refresh
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "prices"


def fake_fetch(url: str) -> bytes:
    if url.startswith("https://pricing.us-east-1.amazonaws.com/") and "/us-east-1/" in url:
        name = "aws-offer-us-east-1.json"
    elif url.startswith("https://pricing.us-east-1.amazonaws.com/") and "AmazonS3/current/us-west-2/" in url:
        name = "aws-s3-us-west-2.json"
    elif url.startswith("https://pricing.us-east-1.amazonaws.com/") and "/us-west-2/" in url:
        name = "aws-offer-us-west-2.json"
    elif url.startswith("https://prices.azure.com/") and "blobpage=2" in url:
        name = "azure-blob-westeurope-page2.json"
    elif url.startswith("https://prices.azure.com/") and "General%20Block%20Blob%20v2" in url and "westeurope" in url:
        name = "azure-blob-westeurope.json"
    elif url.startswith("https://prices.azure.com/") and "westus2" in url and "Standard_NC4as_T4_v3" in url:
        name = "azure-westus2-Standard_NC4as_T4_v3.json"
    elif url == refresh.AWS_SPOT:
        name = "aws-spot.json"
    elif url.startswith("https://prices.azure.com/") and "page=2" in url:
        name = "azure-page2.json"
    elif url.startswith("https://prices.azure.com/") and "Standard_NC4as_T4_v3" in url:
        name = "azure-Standard_NC4as_T4_v3.json"
    elif url.startswith("https://prices.azure.com/"):
        name = "azure-empty.json"
    elif url.startswith("https://cloudbilling.googleapis.com/"):
        assert "key=test-key" in url
        name = "gcp-skus.json"
    else:
        raise AssertionError(f"unexpected URL {url}")
    return (FIXTURES / name).read_bytes()


def test_aws_offer_and_spot_feed():
    prices = refresh.aws_prices("us-east-1", ["g5.xlarge", "p5.48xlarge", "m7i.large", "g6.xlarge"], fake_fetch)
    assert (prices["g5.xlarge"].on_demand, prices["g5.xlarge"].spot) == (1.006, 0.435)  # not Windows, not dedicated
    assert (prices["p5.48xlarge"].on_demand, prices["p5.48xlarge"].spot) == (55.04, 21.69)
    assert (prices["m7i.large"].on_demand, prices["m7i.large"].spot) == (0.1008, None)  # N/A* spot is no price
    assert "g6.xlarge" not in prices


def test_azure_retail_api_follows_pages_and_skips_windows_and_low_priority():
    prices = refresh.azure_prices("eastus", ["Standard_NC4as_T4_v3"], fake_fetch)
    assert (prices["Standard_NC4as_T4_v3"].on_demand, prices["Standard_NC4as_T4_v3"].spot) == (0.526, 0.063)


def test_gcp_composes_vm_price_from_cores_ram_and_gpus():
    prices = refresh.gcp_prices("us-central1", ["a2-highgpu-1g", "g2-standard-4"], fake_fetch, "test-key")
    # a2-highgpu-1g: 12 vCPU x 0.031611 + 85 GiB x 0.004237 + 1 A100 x 2.933908
    assert prices["a2-highgpu-1g"].on_demand == pytest.approx(12 * 0.031611 + 85 * 0.004237 + 2.933908, abs=1e-4)
    assert prices["a2-highgpu-1g"].spot == pytest.approx(12 * 0.009483 + 85 * 0.001271 + 1.586, abs=1e-4)
    assert "g2-standard-4" not in prices  # no G2 SKUs in the recording


def test_refresh_rewrites_rows_with_source_and_date_and_keeps_the_rest(tmp_path):
    shutil.copytree(pricing.PRICES_DIR, tmp_path, dirs_exist_ok=True)
    updated, kept = refresh.refresh(["aws", "azure"], fetch=fake_fetch, folder=tmp_path, today="2030-01-01",
                                    regions=["us-east-1", "eastus"])
    assert updated == 4  # g5.xlarge, p5.48xlarge, m7i.large, Standard_NC4as_T4_v3
    rows = {(r["cloud"], r["sku"]): r for r in csv.DictReader((tmp_path / "compute.csv").open()) if r["region"] in ("us-east-1", "eastus")}
    g5 = rows[("aws", "g5.xlarge")]
    assert (g5["on_demand"], g5["spot_low"], g5["date"]) == ("1.006", "0.435", "2030-01-01")
    assert "AmazonEC2/current/us-east-1" in g5["source"]
    assert rows[("aws", "g6.xlarge")]["date"] == "2026-12-04"  # not in the recording: old row kept
    assert any("g6.xlarge" in line for line in kept)
    assert pricing.load(tmp_path).machine("azure", "eastus", "Standard_NC4as_T4_v3").spot == 0.063
    # The feed has one spot price per region: the refreshed row's per-zone spot rows are dropped, not mixed in.
    assert pricing.load(tmp_path).machine("aws", "us-east-1", "g5.xlarge").spot == 0.435
    assert pricing.load(tmp_path).machine("aws", "us-east-2", "g5.xlarge").zone_spots  # other regions keep theirs


def test_gcp_refresh_needs_an_api_key(tmp_path, monkeypatch):
    monkeypatch.delenv("GCP_API_KEY", raising=False)
    shutil.copytree(pricing.PRICES_DIR, tmp_path, dirs_exist_ok=True)
    with pytest.raises(ValueError, match="GCP_API_KEY: got nothing"):
        refresh.refresh(["gcp"], fetch=fake_fetch, folder=tmp_path)


def test_a_second_region_per_cloud_is_refreshed_from_its_own_price_list(tmp_path):
    # aws-offer-us-west-2.json: g5.xlarge Linux/shared/no software 1.006 (a SQL Standard decoy at 1.726, a p5 row
    # that is only unused-reservation capacity); the spot feed's us-west-2 g5.xlarge is 0.39. Azure westus2: the
    # NC4as T4 v3 Linux meter 0.526, spot 0.061595, a Windows decoy at 0.7.
    shutil.copytree(pricing.PRICES_DIR, tmp_path, dirs_exist_ok=True)
    refresh.refresh(["aws", "azure"], fetch=fake_fetch, folder=tmp_path, today="2030-01-01", regions=["us-west-2", "westus2"])
    prices = pricing.load(tmp_path)
    g5 = prices.machine("aws", "us-west-2", "g5.xlarge")
    assert (g5.on_demand, g5.spot, g5.zone_spots) == (1.006, 0.39, ())
    assert prices.machine("aws", "us-west-2", "p5.48xlarge").source.startswith("skypilot-org")  # not in the list: kept
    t4 = prices.machine("azure", "westus2", "Standard_NC4as_T4_v3")
    assert (t4.on_demand, t4.spot) == (0.526, 0.061595) and "Retail Prices" in t4.source
    assert prices.machine("aws", "us-east-1", "g5.xlarge").source.startswith("skypilot-org")  # other regions untouched


def test_refresh_also_rewrites_which_regions_offer_each_type(tmp_path):
    # The us-west-2 offer file (fixture) sells g5.xlarge but not p5.48xlarge as ordinary on-demand capacity: after
    # a refresh of that region, offered.csv lists us-west-2 for g5.xlarge and no longer for p5.48xlarge.
    from components.breeding_ground import catalog
    shutil.copytree(pricing.PRICES_DIR, tmp_path, dirs_exist_ok=True)
    offered = tmp_path / "offered.csv"
    shutil.copy(catalog.OFFERED_FILE, offered)
    refresh.refresh(["aws"], fetch=fake_fetch, folder=tmp_path, today="2030-01-01", regions=["us-west-2"], offered_file=offered)
    rows = {r["instance_type"]: r for r in csv.DictReader(offered.open()) if r["cloud"] == "aws"}
    assert "us-west-2" in rows["g5.xlarge"]["regions"].split()
    assert "us-west-2" not in rows["p5.48xlarge"]["regions"].split() and rows["p5.48xlarge"]["checked"] == "2030-01-01"
    assert "us-east-1" in rows["p5.48xlarge"]["regions"].split()  # other regions untouched
    assert catalog.OFFERED_FILE.read_text() != offered.read_text()  # the project's file is not the one written


def test_azure_blob_tiers_are_refreshed_per_redundancy_from_the_first_volume_tier(tmp_path):
    # azure-blob-westeurope*.json (shape of the Retail Prices API, figures made up for the parser): Hot LRS 0.02 for
    # the first 50 TB (0.0192 above 51,200 GB is skipped), Hot ZRS 0.025, Cool LRS 0.01, Archive LRS 0.002 on page
    # 2; write operations and a DevTest meter are skipped.
    shutil.copytree(pricing.PRICES_DIR, tmp_path, dirs_exist_ok=True)
    assert refresh.refresh_storage(["westeurope"], fetch=fake_fetch, folder=tmp_path, today="2030-01-01") == 4
    prices = pricing.load(tmp_path)
    assert [prices.storage_class("azure", "westeurope", c) for c in ("Hot", "Hot_ZRS", "Cool", "Archive")] == [0.02, 0.025, 0.01, 0.002]
    rows = {r["storage_class"]: r for r in csv.DictReader((tmp_path / "storage.csv").open()) if r["region"] == "westeurope"}
    assert (rows["Cool"]["min_days"], rows["Archive"]["min_days"]) == ("30", "180")


def test_gcp_prices_a_second_region_from_its_own_skus(tmp_path):
    # gcp-skus.json EMEA SKUs (figures made up for the parser, serviceRegions europe-west4): A2 core 0.034772,
    # RAM 0.004661 per GiB-hour, A100 1.61. a2-highgpu-1g = 12 vCPU + 85 GiB + 1 A100; no spot SKUs there.
    prices = refresh.gcp_prices("europe-west4", ["a2-highgpu-1g"], fake_fetch, "test-key")
    assert prices["a2-highgpu-1g"].on_demand == pytest.approx(12 * 0.034772 + 85 * 0.004661 + 1.61, abs=1e-4)
    assert prices["a2-highgpu-1g"].spot is None


def test_s3_classes_are_refreshed_from_the_regions_offer_file(tmp_path):
    # aws-s3-us-west-2.json (AmazonS3 offer file shape, the catalog's us-west-2 figures): Standard 0.023 for the
    # first 50 TB (0.022 above is skipped), Standard-IA 0.0125, Glacier Flexible 0.0036, Deep Archive 0.00099;
    # One Zone-IA and request SKUs are not classes the farm uses.
    shutil.copytree(pricing.PRICES_DIR, tmp_path, dirs_exist_ok=True)
    assert refresh.refresh_storage(["us-west-2"], fetch=fake_fetch, folder=tmp_path, today="2030-01-01", cloud="aws") == 4
    prices = pricing.load(tmp_path)
    assert [prices.storage_class("aws", "us-west-2", c) for c in ("STANDARD", "STANDARD_IA", "GLACIER", "DEEP_ARCHIVE")] == [
        0.023, 0.0125, 0.0036, 0.00099]
    rows = {r["storage_class"]: r for r in csv.DictReader((tmp_path / "storage.csv").open()) if r["region"] == "us-west-2"}
    assert rows["GLACIER"]["min_days"] == "90" and "AmazonS3/current/us-west-2" in rows["GLACIER"]["source"]
