"""The cost estimate. Expected figures are computed by hand from the catalog rows quoted in comments
(dragonfarm/prices/*.csv), never by calling the estimator twice."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dragonfarm.cost import estimate, steady_state_gb
from tests.conftest import ROOT, plan_config, planned, stack_config

# Catalog rows used below (us-east-1):
G5_12XL_OD, G5_12XL_SPOT = 5.672, (2.08 + 2.78) / 2   # g5.12xlarge on-demand; spot range midpoint
G6_XL_OD, G6_XL_SPOT = 0.8048, (0.26 + 0.28) / 2        # g6.xlarge
G4DN_XL_OD = 0.526                                      # g4dn.xlarge
P5_OD, P5_SPOT, P5_SPOT_LOW = 55.04, (17.63 + 25.75) / 2, 17.63
M7I_LARGE = 0.1008
GP3, NAT_HOUR, NAT_GB, IPV4, EKS, KMS, ALARM, EGRESS = 0.08, 0.045, 0.045, 0.005, 0.10, 1.00, 0.10, 0.09
S3_STANDARD, S3_IA, S3_GLACIER = 0.023, 0.0125, 0.0036


def line(est, name):
    (found,) = [l for l in est.lines if l.name == name and l.status == "priced"]
    return found


def test_spot_gpu_pool_is_priced_at_spot_plus_its_disk():
    est = estimate(planned("aws-dev"))
    disk_per_hour = 200 * GP3 / 730
    train = line(est, "dfarm-aws-dev-cluster-nodepool-train")
    assert train.monthly == pytest.approx(200 * (G5_12XL_SPOT + disk_per_hour), abs=0.01)  # 490.38
    assert train.naive == pytest.approx(2 * 730 * (G5_12XL_OD + disk_per_hour), abs=0.01)  # 2 nodes always on, on-demand
    infer = line(est, "dfarm-aws-dev-cluster-nodepool-infer")
    assert infer.monthly == pytest.approx(600 * (G6_XL_SPOT + disk_per_hour), abs=0.01)  # 175.15


def test_spot_with_fallback_blends_spot_share():
    est = estimate(planned("aws-prod"))
    disk = 1000 * GP3 / 730
    h100 = line(est, "dfarm-aws-prod-cluster-nodepool-train-h100")
    assert h100.monthly == pytest.approx(1400 * (0.8 * P5_SPOT + 0.2 * P5_OD + disk), abs=0.01)
    assert h100.floor == pytest.approx(1400 * P5_SPOT_LOW, abs=0.01)
    assert h100.naive == pytest.approx(4 * 730 * (P5_OD + disk), abs=0.01)


def test_fixed_fees():
    est = estimate(planned("aws-dev"))
    assert line(est, "dfarm-aws-dev-cluster").monthly == pytest.approx(730 * EKS)  # 73.00
    assert line(est, "dfarm-aws-dev-cluster-system").monthly == pytest.approx(730 * M7I_LARGE, abs=0.01)  # 73.58
    nat = [l for l in est.lines if l.type == "aws:ec2/natGateway:NatGateway"]
    assert len(nat) == 1 and nat[0].monthly == pytest.approx(730 * NAT_HOUR + 300 * NAT_GB)  # 46.35
    eip = [l for l in est.lines if l.type == "aws:ec2/eip:Eip"]
    assert eip[0].monthly == pytest.approx(730 * IPV4, abs=0.01)  # 3.65
    assert line(est, "dfarm-aws-dev-fence-key").monthly == KMS
    assert line(est, "internet egress").monthly == pytest.approx(100 * EGRESS)


def test_prod_pays_nat_in_every_zone():
    nats = [l for l in estimate(planned("aws-prod")).lines if l.type == "aws:ec2/natGateway:NatGateway"]
    assert len(nats) == 3
    assert all(l.monthly == pytest.approx(730 * NAT_HOUR + 5000 / 3 * NAT_GB, abs=0.01) for l in nats)


def test_dev_box_runs_only_its_hours_but_pays_its_disk_all_month():
    box = line(estimate(planned("aws-dev")), "dfarm-aws-dev-devbox")
    assert box.monthly == pytest.approx(120 * G4DN_XL_OD + 200 * GP3, abs=0.01)  # 79.12
    assert box.naive == pytest.approx(730 * G4DN_XL_OD + 200 * GP3, abs=0.01)


def test_storage_follows_the_lifecycle_rules():
    est = estimate(planned("aws-dev"))
    # datasets: 2000 GB stored, 200 GB/month in (6.67/day) -> 300 days of data; cool at 30 days.
    datasets = line(est, "dfarm-aws-dev-datasets")
    assert datasets.monthly == pytest.approx(200 * S3_STANDARD + 1800 * S3_IA, abs=0.01)  # 27.10
    assert datasets.naive == pytest.approx(2000 * S3_STANDARD, abs=0.01)  # 46.00
    # logs: 100 GB/month, cool at 30, Glacier at 90, deleted at 365.
    rate = 100 / 30
    logs = line(est, "dfarm-aws-dev-logs")
    assert logs.monthly == pytest.approx(rate * 30 * S3_STANDARD + rate * 60 * S3_IA + rate * 275 * S3_GLACIER, abs=0.01)


def test_steady_state_model():
    assert steady_state_gb(300, 0, "HOT", [("COOL", 30), ("COLD", 90)], 365) == pytest.approx(
        {"HOT": 300, "COOL": 600, "COLD": 2750})
    assert steady_state_gb(0, 500, "HOT", [("COOL", 30)], None) == {"HOT": 500}  # no ingest: ages unknown, all hot
    assert steady_state_gb(30, 0, "HOT", [], None) == pytest.approx({"HOT": 30})  # one month of data


def test_a_lifecycle_change_shows_its_saving(tmp_path):
    config = stack_config("aws-dev")
    config["dragonfarm:troughs"]["datasets"]["lifecycle"] = {"cool_after_days": None}
    without_tiering = line(estimate(plan_config(config, tmp_path)), "dfarm-aws-dev-datasets")
    assert without_tiering.monthly == pytest.approx(2000 * S3_STANDARD, abs=0.01)
    assert without_tiering.monthly - line(estimate(planned("aws-dev")), "dfarm-aws-dev-datasets").monthly == pytest.approx(18.90, abs=0.01)


def test_totals_budget_share_and_saving():
    est = estimate(planned("aws-dev"))
    priced = [l for l in est.lines if l.status == "priced"]
    assert est.total == pytest.approx(sum(l.monthly for l in priced), abs=0.01)
    assert est.budget == 2000 and est.budget_share == pytest.approx(est.total / 2000)
    assert est.naive_total > est.total > est.floor_total > 0


def test_usage_based_resources_are_listed_not_zeroed():
    est = estimate(planned("aws-dev"))
    listed = {(l.type, l.status) for l in est.not_estimated()}
    assert ("aws:cloudwatch/logGroup:LogGroup", "usage") in listed and ("aws:sqs/queue:Queue", "usage") in listed


def test_resources_without_a_price_are_listed_as_unpriced(tmp_path):
    config = stack_config("aws-dev")
    config["dragonfarm:region"] = "eu-central-1"
    config["dragonfarm:zones"] = ["eu-central-1a", "eu-central-1b"]
    est = estimate(plan_config(config, tmp_path))
    unpriced = {l.name for l in est.lines if l.status == "unpriced"}
    assert "dfarm-aws-dev-cluster-nodepool-train" in unpriced and "dfarm-aws-dev-cluster" in unpriced
    assert all("eu-central-1" in l.detail for l in est.lines if l.status == "unpriced")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "dragonfarm.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_json_and_fail_over_budget(tmp_path):
    run = run_cli("cost", "aws-dev", "--json", "--fail-over-budget")
    assert run.returncode == 0
    body = json.loads(run.stdout)
    assert body["budget"] == 2000 and body["total"] < 2000 and set(body["by_layer"]) >= {"fence", "trough", "breeding_ground"}
    import yaml

    config = stack_config("aws-dev")
    config["dragonfarm:ledger"]["monthly_budget"] = 500
    path = tmp_path / "Pulumi.tight.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    over = run_cli("cost", str(path), "--fail-over-budget")
    assert over.returncode == 3 and "exceeds the budget 500.00 USD" in over.stderr


def test_cost_reads_a_plan_json_file(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(planned("aws-dev").to_json())
    body = json.loads(run_cli("cost", str(path), "--json").stdout)
    assert body["total"] == estimate(planned("aws-dev")).total


def test_every_resource_type_of_every_stack_has_a_price_rule_or_a_reason():
    from tests.conftest import STACKS

    for stack in STACKS:
        missing = [l.type for l in estimate(planned(stack)).lines if l.detail == "no price rule for this resource type"]
        assert missing == [], stack


def test_gcp_and_azure_storage_follow_their_lifecycle_rules():
    gcp = estimate(planned("gcp-dev"))
    datasets = line(gcp, "dfarm-gcp-dev-datasets")
    # 1000 GB stored, 100 GB/month in -> 300 days of data; NEARLINE from day 30 (GCS STANDARD 0.020, NEARLINE 0.010).
    assert datasets.monthly == pytest.approx(100 * 0.020 + 900 * 0.010, abs=0.01)
    azure = estimate(planned("azure-dev"))
    data = line(azure, "dfarm-az-dev-data")
    # Same usage on Azure: Hot 0.0208, Cool 0.0115.
    assert data.monthly == pytest.approx(100 * 0.0208 + 900 * 0.0115, abs=0.01)
    assert len([l for l in azure.lines if l.type == "azure-native:network:PrivateEndpoint"]) == 3


def test_warm_gpu_nodes_are_priced_always_on_and_the_pool_runs_the_rest():
    # aws-prod infer: min_nodes 1 (a warm on-demand g6.xlarge node group, 730 h) and 4000 node-hours in all
    # (usage profile), so the Karpenter pool runs 4000 - 730 = 3270 h at 80 % spot.
    est = estimate(planned("aws-prod"))
    warm = line(est, "dfarm-aws-prod-cluster-warm-infer")
    assert warm.monthly == pytest.approx(730 * G6_XL_OD, abs=0.01)  # 587.50
    disk_per_hour = 200 * GP3 / 730
    infer = line(est, "dfarm-aws-prod-cluster-nodepool-infer")
    assert infer.monthly == pytest.approx(3270 * (0.8 * G6_XL_SPOT + 0.2 * G6_XL_OD + disk_per_hour), abs=0.01)
    assert infer.naive == pytest.approx(7 * 730 * (G6_XL_OD + disk_per_hour), abs=0.01)  # the 7 nodes above the warm one
