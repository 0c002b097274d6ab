"""The cost estimate. Expected figures are computed by hand from the catalog rows quoted in comments
(dragonfarm/prices/*.csv), never by calling the estimator twice."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dragonfarm.cost import estimate, steady_state_gb
from tests.conftest import ROOT, plan_config, planned, stack_config

# Catalog rows used below (us-east-1; compute.csv on-demand, spot.csv spot per zone, both from the SkyPilot
# AWS catalog). Spot is the median over the region's zones, worked by hand here:
G5_12XL_OD = 5.672
G5_12XL_SPOT = 2.1824          # zones az1 2.7804, az2 2.0796, az4 2.0813, az5 2.1824, az6 2.2387: middle of five
G6_XL_OD = 0.8048
G6_XL_SPOT = (0.3653 + 0.3988) / 2  # zones az1 0.4011, az2 0.3653, az4 0.349, az6 0.3988: mean of the middle two
G4DN_XL_OD = 0.526
P5_OD = 55.04
P5_SPOT = (19.2531 + 21.1543) / 2   # zones az2 19.2531, az3 21.1543, az5 25.7522, az6 17.6289 (az1, az4: no spot)
M7I_LARGE = 0.1008
GP3, NAT_HOUR, NAT_GB, IPV4, EKS, KMS, ALARM, EGRESS = 0.08, 0.045, 0.045, 0.005, 0.10, 1.00, 0.10, 0.09
S3_STANDARD, S3_IA, S3_GLACIER = 0.023, 0.0125, 0.0036
DAYS = 730 / 24  # the clouds' 730-hour month, in days: ingest per month arrives over 30.42 days


def line(est, name):
    (found,) = [l for l in est.lines if l.name == name and l.status == "priced"]
    return found


def test_spot_gpu_pool_is_priced_at_spot_plus_its_disk():
    est = estimate(planned("aws-dev"))
    disk_per_hour = 200 * GP3 / 730
    train = line(est, "dfarm-aws-dev-cluster-nodepool-train")
    assert train.monthly == pytest.approx(200 * (G5_12XL_SPOT + disk_per_hour), abs=0.01)  # 440.86
    # Without savings: the same 200 hours on-demand. Ceiling: both nodes all month, at spot (a spot-only pool).
    assert train.without == pytest.approx(200 * (G5_12XL_OD + disk_per_hour), abs=0.01)
    assert train.ceiling == pytest.approx(2 * 730 * (G5_12XL_SPOT + disk_per_hour), abs=0.01)
    assert train.floor == train.monthly  # a spot pool already pays the cheapest price it can get
    infer = line(est, "dfarm-aws-dev-cluster-nodepool-infer")
    assert infer.monthly == pytest.approx(600 * (G6_XL_SPOT + disk_per_hour), abs=0.01)


def test_spot_with_fallback_blends_spot_share():
    est = estimate(planned("aws-prod"))
    disk = 1000 * GP3 / 730
    h100 = line(est, "dfarm-aws-prod-cluster-nodepool-train-h100")
    assert h100.monthly == pytest.approx(1400 * (0.8 * P5_SPOT + 0.2 * P5_OD + disk), abs=0.01)
    assert h100.floor == pytest.approx(1400 * (P5_SPOT + disk), abs=0.01)  # all hours on spot: the cheapest it allows
    assert h100.without == pytest.approx(1400 * (P5_OD + disk), abs=0.01)
    assert h100.ceiling == pytest.approx(4 * 730 * (P5_OD + disk), abs=0.01)  # a fallback pool can end up all on-demand


def test_fixed_fees():
    est = estimate(planned("aws-dev"))
    assert line(est, "dfarm-aws-dev-cluster").monthly == pytest.approx(730 * EKS)  # 73.00
    # System node: m7i.large on-demand all month plus its 50 GB gp3 root disk (the launch template's volume).
    assert line(est, "dfarm-aws-dev-cluster-system").monthly == pytest.approx(730 * M7I_LARGE + 50 * GP3, abs=0.01)  # 77.58
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
    assert box.without == pytest.approx(730 * G4DN_XL_OD + 200 * GP3, abs=0.01)  # never stopped


def test_storage_follows_the_lifecycle_rules():
    est = estimate(planned("aws-dev"))
    # datasets: 2000 GB stored now plus 200 GB arriving this month (200 / 30.42 a day); cool after 30 days.
    # 29.57, the figure an independent recomputation from the price rows gave too.
    rate = 200 / DAYS
    datasets = line(est, "dfarm-aws-dev-datasets")
    assert datasets.monthly == pytest.approx(30 * rate * S3_STANDARD + (2200 - 30 * rate) * S3_IA, abs=0.01)
    # Nothing expires: by month 12 another 11 x 200 GB has arrived (4,400 GB; the last 30 days' of it hot).
    assert datasets.month12 == pytest.approx(30 * rate * S3_STANDARD + (4400 - 30 * rate) * S3_IA, abs=0.01)
    assert datasets.floor == pytest.approx(2200 * S3_IA, abs=0.01)  # all of it in its cheapest class
    # Without savings: everything hot for ever, growing: 2,000 + 200 GB in month 1, 2,000 + 12 x 200 in month 12.
    assert datasets.without == pytest.approx(2200 * S3_STANDARD, abs=0.01)
    assert datasets.without12 == pytest.approx(4400 * S3_STANDARD, abs=0.01)
    # logs: 100 GB/month, cool at 30, Glacier at 90, deleted at 365.
    rate = 100 / DAYS
    logs = line(est, "dfarm-aws-dev-logs")
    assert logs.monthly == pytest.approx(rate * 30 * S3_STANDARD + rate * 60 * S3_IA + rate * 275 * S3_GLACIER, abs=0.01)
    # Without savings holds the same 365 days of logs, all Standard (a month-1 figure of 100 GB made the
    # "saving" negative); by month 12 nothing expires, so 11 more months of ingest are there.
    assert logs.without == pytest.approx(rate * 365 * S3_STANDARD, abs=0.01) and logs.without > logs.monthly
    assert logs.without12 == pytest.approx((rate * 365 + 1100) * S3_STANDARD, abs=0.01)


def test_steady_state_model():
    day = 300 / DAYS  # 300 GB a month is 9.86 GB a day
    assert steady_state_gb(300, 0, "HOT", [("COOL", 30), ("COLD", 90)], 365) == pytest.approx(
        {"HOT": 30 * day, "COOL": 60 * day, "COLD": 275 * day})
    assert steady_state_gb(0, 500, "HOT", [("COOL", 30)], None) == {"HOT": 500}  # no ingest: ages unknown, all hot
    assert steady_state_gb(30, 0, "HOT", [], None) == pytest.approx({"HOT": 30})  # one month of data
    assert steady_state_gb(30, 100, "HOT", [], None) == pytest.approx({"HOT": 130})  # what is there now plus this month


def test_a_lifecycle_change_shows_its_saving(tmp_path):
    config = stack_config("aws-dev")
    config["dragonfarm:troughs"]["datasets"]["lifecycle"] = {"cool_after_days": None}
    without_tiering = line(estimate(plan_config(config, tmp_path)), "dfarm-aws-dev-datasets")
    assert without_tiering.monthly == pytest.approx(2200 * S3_STANDARD, abs=0.01)
    assert without_tiering.monthly - line(estimate(planned("aws-dev")), "dfarm-aws-dev-datasets").monthly == pytest.approx(
        (2200 - 30 * 200 / DAYS) * (S3_STANDARD - S3_IA), abs=0.01)  # what is older than 30 days moves to IA


def test_totals_budget_share_and_saving():
    est = estimate(planned("aws-dev"))
    priced = [l for l in est.lines if l.status == "priced"]
    assert est.total == pytest.approx(sum(l.monthly for l in priced), abs=0.01)
    assert est.budget == 2000 and est.budget_share == pytest.approx(est.total / 2000)
    assert est.ceiling_total > est.without_total > est.total >= est.floor_total > 0
    assert est.complete and est.headline() == f"Monthly estimate {est.total:,.2f} USD (complete)"


def test_usage_based_resources_are_listed_not_zeroed():
    est = estimate(planned("aws-dev"))
    listed = {(l.type, l.status) for l in est.not_estimated()}
    assert ("aws:sqs/queue:Queue", "usage") in listed and ("aws:sns/topic:Topic", "usage") in listed


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
    # 1000 GB stored, 100 GB a month in; NEARLINE from day 30 (GCS STANDARD 0.020, NEARLINE 0.010).
    hot = 30 * 100 / DAYS
    assert datasets.monthly == pytest.approx(hot * 0.020 + (1100 - hot) * 0.010, abs=0.01)
    azure = estimate(planned("azure-dev"))
    data = line(azure, "dfarm-az-dev-data")
    # Same usage on Azure eastus: Hot LRS 0.0208, Cool LRS 0.0152, and the 100 GB written each month crosses the
    # private endpoint (Private Link data processed 0.01 per GB).
    assert data.monthly == pytest.approx(hot * 0.0208 + (1100 - hot) * 0.0152 + 100 * 0.01, abs=0.01)
    assert len([l for l in azure.lines if l.type == "azure-native:network:PrivateEndpoint"]) == 3


def test_warm_gpu_nodes_are_priced_always_on_and_the_pool_runs_the_rest():
    # aws-prod infer: min_nodes 1 (a warm on-demand g6.xlarge node group, 730 h) and 4000 node-hours in all
    # (usage profile), so the Karpenter pool runs 4000 - 730 = 3270 h at 80 % spot.
    est = estimate(planned("aws-prod"))
    warm = line(est, "dfarm-aws-prod-cluster-warm-infer")
    assert warm.monthly == pytest.approx(730 * G6_XL_OD + 200 * GP3, abs=0.01)  # 603.50 with its 200 GB root disk
    disk_per_hour = 200 * GP3 / 730
    infer = line(est, "dfarm-aws-prod-cluster-nodepool-infer")
    assert infer.monthly == pytest.approx(3270 * (0.8 * G6_XL_SPOT + 0.2 * G6_XL_OD + disk_per_hour), abs=0.01)
    # Ceiling: the 7 nodes above the warm one all month, on-demand (a fallback pool may get no spot).
    assert infer.ceiling == pytest.approx(7 * 730 * (G6_XL_OD + disk_per_hour), abs=0.01)


def test_an_incomplete_estimate_says_so_and_fails_the_budget_gate(tmp_path):
    import yaml

    # eu-central-1 has compute rows but no storage or fee rows yet: every bucket, the control plane, the NAT...
    # are unpriced. The headline says so and --fail-over-budget refuses it unless --allow-unpriced.
    config = stack_config("aws-dev")
    config["dragonfarm:region"] = "eu-central-1"
    config["dragonfarm:zones"] = ["eu-central-1a", "eu-central-1b"]
    path = tmp_path / "Pulumi.frankfurt.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    est = estimate(plan_config(config, tmp_path))
    unpriced = len(est.unpriced())
    assert unpriced > 0 and not est.complete
    assert est.headline() == f"Monthly estimate {est.total:,.2f} USD (incomplete: {unpriced} items unpriced)"
    run = run_cli("cost", str(path), "--json", "--fail-over-budget")
    body = json.loads(run.stdout)
    assert (body["complete"], body["unpriced"]) == (False, unpriced)
    assert run.returncode == 3 and f"estimate incomplete: {unpriced} billable items unpriced" in run.stderr
    assert run_cli("cost", str(path), "--fail-over-budget", "--allow-unpriced").returncode == 0


def test_raising_a_ceiling_shows_in_the_diff_even_when_usage_is_unchanged(tmp_path):
    from dragonfarm.diff import diff_plans
    from dragonfarm.report import pr_comment

    # aws-dev train: spot g5.12xlarge (median spot 2.1824 + 200 GB x 0.08 / 730 disk per hour), max_nodes 2 -> 6:
    # four more nodes all month. The expected usage, 200 node-hours, does not move.
    config = stack_config("aws-dev")
    config["dragonfarm:breeding_ground"]["gpu_pools"]["train"]["max_nodes"] = 6
    d = diff_plans(planned("aws-dev"), plan_config(config, tmp_path, name="aws-dev"))
    assert d.delta == 0
    assert d.ceiling_delta == pytest.approx(4 * 730 * (G5_12XL_SPOT + 200 * GP3 / 730), abs=0.02)
    text = pr_comment(d)
    assert "**Monthly cost unchanged**" in text and f"+${d.ceiling_delta:,.2f}" in text and "**Ceiling**" in text


def test_a_farm_in_oregon_is_priced_from_oregons_rows(tmp_path):
    # us-west-2 rows: g5.12xlarge on-demand 5.672, spot by zone usw2-az1 3.3699, az2 2.757, az3 3.0607 (median
    # 3.0607); g6.xlarge spot az1 0.425, az2 0.4537, az3 0.39, az4 0.4541 (median (0.425 + 0.4537) / 2);
    # m7i.large 0.1008; S3 Standard 0.023; EKS 0.10; gp3 0.08.
    config = stack_config("aws-dev")
    config["dragonfarm:region"] = "us-west-2"
    config["dragonfarm:zones"] = ["us-west-2a", "us-west-2b"]
    est = estimate(plan_config(config, tmp_path))
    assert est.complete
    disk_per_hour = 200 * GP3 / 730
    assert line(est, "dfarm-aws-dev-cluster-nodepool-train").monthly == pytest.approx(200 * (3.0607 + disk_per_hour), abs=0.01)
    assert line(est, "dfarm-aws-dev-cluster-nodepool-infer").monthly == pytest.approx(
        600 * ((0.425 + 0.4537) / 2 + disk_per_hour), abs=0.01)
    assert line(est, "dfarm-aws-dev-cluster-system").monthly == pytest.approx(730 * 0.1008 + 50 * GP3, abs=0.01)
    assert line(est, "dfarm-aws-dev-cluster").monthly == pytest.approx(730 * 0.10)


def test_cloud_nat_bills_its_ip_address_too():
    # Cloud NAT pricing page: 0.0014 per VM-hour (up to 32 VMs), 0.045 per GiB processed and 0.005 per NAT IP-hour.
    # gcp-dev: every VM behind the NAT bills VM-hours: 300 GPU node-hours, one system node all month (730 h) and the
    # dev box's 120 h; 100 GB through NAT; one auto-allocated IP.
    (nat,) = [l for l in estimate(planned("gcp-dev")).lines if l.type == "gcp:compute/routerNat:RouterNat"]
    assert nat.monthly == pytest.approx((300 + 730 + 120) * 0.0014 + 100 * 0.045 + 730 * 0.005, abs=0.01)


def test_log_groups_are_priced_from_the_usage_profile_and_listed_without_it(tmp_path):
    # CloudWatch Logs (fees.csv us-east-1): 0.50 per GB ingested, 0.03 per GB-month stored. aws-prod sends 60 GB a
    # month of flow logs kept 365 days: 60 x 0.50 + (60 / 30.42 x 365) x 0.03.
    est = estimate(planned("aws-prod"))
    flow = line(est, "dfarm-aws-prod-fence-flow-logs")
    assert flow.monthly == pytest.approx(60 * 0.50 + 60 / DAYS * 365 * 0.03, abs=0.01)
    config = stack_config("aws-dev")
    del config["dragonfarm:usage"]["log_ingest_gb"]
    (group,) = [l for l in estimate(plan_config(config, tmp_path)).not_estimated()
                if l.name == "dfarm-aws-dev-fence-flow-logs" and l.type == "aws:cloudwatch/logGroup:LogGroup"]
    assert group.status == "usage" and "set usage.log_ingest_gb.flow_logs" in group.detail


def test_what_no_figure_prices_is_said_not_implied_zero():
    run = run_cli("cost", "aws-dev", "--json")
    assert any("lifecycle transitions" in item for item in json.loads(run.stdout)["not_modelled"])
    assert "Not in any figure: storage requests and lifecycle transitions" in run_cli("cost", "aws-dev").stdout.replace("\n", " ")
