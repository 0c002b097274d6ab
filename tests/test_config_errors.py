"""Bad input: one line per bad key naming path, bad value and what is allowed; exit 2; nothing built."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from blueprints.config import ConfigError, load_farm
from tests.conftest import ROOT, stack_config


def errors(config: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_farm(config, source="s.yaml")
    return info.value.lines()


def aws(**changes) -> dict:
    config = stack_config("aws-dev")
    del config["dragonfarm:usage"]  # the cases below reshape pools and troughs the usage profile names
    for key, value in changes.items():
        config[f"dragonfarm:{key}"] = value
    return config


# The smallest breeding ground a program can reach: a public endpoint open to one public range.
REACHABLE = {"deploy_from": "internet", "public_endpoint_cidrs": ["198.18.0.0/15"], "admins": ["arn:aws:iam::123456789012:role/admins"]}


def test_shipped_stacks_are_valid():
    for stack in ("aws-dev", "aws-prod", "gcp-dev", "gcp-prod", "azure-dev", "azure-prod"):
        load_farm(stack_config(stack), source=stack)


def test_unknown_cloud():
    assert errors(aws(cloud="ibm")) == ["s.yaml: dragonfarm:cloud: got 'ibm'; allowed: one of aws, gcp or azure"]


def test_unknown_top_level_key_suggests_the_close_one():
    config = aws()
    config["dragonfarm:ledgr"] = {}
    (line,) = errors(config)
    assert line.startswith("s.yaml: dragonfarm:ledgr: got 'ledgr'; allowed: a known key (did you mean 'ledger'?): cloud, region,")


def test_unknown_nested_key_is_not_silently_ignored():
    config = aws()
    config["dragonfarm:troughs"]["datasets"]["lifecycle"] = {"cool_afer_days": 40}
    (line,) = errors(config)
    assert line.startswith("s.yaml: dragonfarm:troughs.datasets.lifecycle.cool_afer_days: got 'cool_afer_days'; "
                           "allowed: a known key (did you mean 'cool_after_days'?)")


def test_zone_outside_region():
    assert errors(aws(zones=["us-east-1a", "us-west-2b"])) == [
        "s.yaml: dragonfarm:zones[1]: got 'us-west-2b'; allowed: a zone of us-east-1, such as 'us-east-1a'"]


def test_region_of_another_cloud():
    assert errors(aws(region="us-central1", zones=["us-central1a", "us-central1b"])) == [
        "s.yaml: dragonfarm:region: got 'us-central1'; allowed: an AWS region such as 'us-east-1'"]


def test_aws_needs_two_zones():
    assert errors(aws(zones=["us-east-1a"])) == [
        "s.yaml: dragonfarm:zones: got ['us-east-1a']; allowed: 2 to 3 distinct zones on aws"]


def test_cidr_with_host_bits_is_not_a_network():
    assert errors(aws(fence={"cidr": "10.0.0.1/16"})) == [
        "s.yaml: dragonfarm:fence.cidr: got '10.0.0.1/16'; allowed: an IPv4 network in CIDR form with no host bits set, e.g. 10.0.0.0/16"]


def test_overlapping_cidrs():
    assert errors(aws(fence={"cidr": "10.64.0.0/16"})) == [
        "s.yaml: dragonfarm:fence.pods_cidr: got '10.64.0.0/14'; allowed: a range that does not overlap cidr (10.64.0.0/16)"]


def test_existing_network_and_cidr_together():
    (line,) = errors(aws(fence={"cidr": "10.1.0.0/16", "existing_network": {"network_id": "vpc-0abc12345",
                                                                            "private_subnet_ids": ["subnet-0aaa1111", "subnet-0bbb2222"]}}))
    assert line == ("s.yaml: dragonfarm:fence.cidr: got IPv4Network('10.1.0.0/16'); allowed: leave unset when existing_network "
                    "is given (bring your own network or create one, not both)")


def test_min_nodes_above_max_nodes():
    config = aws(breeding_ground={**REACHABLE, "gpu_pools": {"train": {"gpu": "a10g", "min_nodes": 3, "max_nodes": 2}}})
    assert errors(config) == ["s.yaml: dragonfarm:breeding_ground.gpu_pools.train.min_nodes: got 3; allowed: at most max_nodes (2)"]


def test_warm_nodes_are_refused_on_efa_pools():
    config = aws(breeding_ground={**REACHABLE, "gpu_pools": {"train": {"gpu": "h100", "gpus_per_node": 8, "efa": True, "min_nodes": 1}}})
    assert errors(config) == ["s.yaml: dragonfarm:breeding_ground.gpu_pools.train.min_nodes: got 1; "
                              "allowed: 0 for an efa pool (warm nodes carry no fabric interfaces)"]


def test_more_gpu_pools_than_a_kueue_resource_group_holds_are_refused():
    # Kueue v1beta1 ResourceGroup.flavors has MaxItems=64 (kubernetes-sigs/kueue, tag v0.14.4,
    # apis/kueue/v1beta1/clusterqueue_types.go): the API server would refuse a 65-flavor ClusterQueue.
    pools = {f"p{i}": {"gpu": "t4"} for i in range(65)}
    assert errors(aws(breeding_ground={**REACHABLE, "gpu_pools": pools})) == [
        "s.yaml: dragonfarm:breeding_ground.gpu_pools: got '65 pools'; allowed: at most 64: each pool is a Kueue "
        "flavor of every team's ClusterQueue resource group"]
    pools.pop("p64")
    load_farm(aws(breeding_ground={**REACHABLE, "gpu_pools": pools}), source="s.yaml")


def test_gpu_the_cloud_does_not_offer():
    config = aws(breeding_ground={**REACHABLE, "gpu_pools": {"train": {"gpu": "a10"}}})
    assert errors(config) == ["s.yaml: dragonfarm:breeding_ground.gpu_pools.train.gpu: got 'a10'; "
                              "allowed: a GPU aws offers: a100-40gb, a100-80gb, a10g, h100, l4, t4"]


@pytest.mark.parametrize("budget", [0, -5])
def test_budget_must_be_positive(budget):
    assert errors(aws(ledger={"monthly_budget": budget, "alert_emails": ["a@example.com"]})) == [
        f"s.yaml: dragonfarm:ledger.monthly_budget: got {budget}; allowed: greater than 0"]


def test_budget_is_required():
    assert errors(aws(ledger={"alert_emails": ["a@example.com"]})) == [
        "s.yaml: dragonfarm:ledger.monthly_budget: got nothing; allowed: a value (this key is required)"]


@pytest.mark.parametrize("trough,lifecycle,line", [
    # out of order
    ("logs", {"cold_after_days": 20}, "troughs.logs.lifecycle.cold_after_days: got 20; "
     "allowed: at least 60 (cool_after_days 30 + STANDARD_IA minimum storage duration 30 days)"),
    # leaves a class before its minimum storage duration
    ("logs", {"expire_after_days": 120}, "troughs.logs.lifecycle.expire_after_days: got 120; "
     "allowed: at least 180 (cold_after_days 90 + GLACIER minimum storage duration 90 days)"),
    # earlier than S3 moves objects
    ("datasets", {"cool_after_days": 10}, "troughs.datasets.lifecycle.cool_after_days: got 10; "
     "allowed: at least 30 (aws moves objects to STANDARD_IA no earlier)"),
])
def test_lifecycle_days(trough, lifecycle, line):
    config = aws()
    config["dragonfarm:troughs"][trough]["lifecycle"] = lifecycle
    assert errors(config) == [f"s.yaml: dragonfarm:{line}"]


def test_s3_bucket_name_rules():
    config = aws()
    config["dragonfarm:troughs"]["datasets"]["name"] = "Bad_Bucket"
    assert errors(config) == ["s.yaml: dragonfarm:troughs.datasets.name: got 'Bad_Bucket'; allowed: an S3 bucket name: 3-63 "
                              "lowercase letters, digits and hyphens, starting and ending with a letter or digit (no dots)"]


@pytest.mark.parametrize("name", ["xn--data", "sthree-data", "amzn-s3-demo-data", "data-s3alias", "data--ol-s3", "data--x-s3",
                                  "data--table-s3"])
def test_s3_reserved_prefixes_and_suffixes(name):
    # Amazon S3 User Guide, "General purpose bucket naming rules".
    config = aws()
    config["dragonfarm:troughs"]["datasets"]["name"] = name
    (line,) = errors(config)
    assert line.startswith(f"s.yaml: dragonfarm:troughs.datasets.name: got '{name}'; allowed: an S3 bucket name not starting with "
                           "xn--, sthree-, amzn-s3-demo- nor ending with -s3alias, --ol-s3, .mrap, --x-s3, --table-s3")


@pytest.mark.parametrize("name, rule", [
    ("google-data", " that neither starts with 'goog'"), ("my-g00gle-data", " that neither starts with 'goog'"),
    ("goog-data", " that neither starts with 'goog'"), ("data.example.com", ": 3-63 lowercase"), ("192.168.5.4", ": 3-63 lowercase"),
])
def test_gcs_names_google_reserves_or_needs_a_domain_for(name, rule):
    # Cloud Storage "Bucket naming requirements": no goog prefix, no google or look-alikes; dots need domain verification.
    config = stack_config("gcp-dev")
    config["dragonfarm:troughs"]["datasets"]["name"] = name
    (line,) = errors(config)
    assert line.startswith(f"s.yaml: dragonfarm:troughs.datasets.name: got '{name}'; allowed: a GCS bucket name{rule}")


def test_azure_storage_account_name_rules():
    config = stack_config("azure-dev")
    config["dragonfarm:troughs"]["checkpoints-archive"] = {"purpose": "checkpoints"}
    assert errors(config) == ["s.yaml: dragonfarm:troughs.checkpoints-archive.name: got 'dfarmazdevcheckpointsarchive'; "
                              "allowed: an Azure storage account name: 3-24 lowercase letters and digits"]


def test_gcp_bucket_name_limit():
    config = stack_config("gcp-dev")
    config["dragonfarm:troughs"]["datasets"]["name"] = "x" * 64
    (line,) = errors(config)
    assert line.endswith("allowed: a GCS bucket name: 3-63 lowercase letters, digits, hyphens and underscores, starting and ending "
                         "with a letter or digit (no dots)")


def test_gcp_needs_a_project():
    config = stack_config("gcp-dev")
    del config["dragonfarm:project"]
    assert errors(config) == ["s.yaml: dragonfarm:project: got nothing; allowed: a GCP project id: 6-30 lowercase letters, "
                              "digits and hyphens (required when cloud is gcp)"]


def test_usage_must_name_pools_and_troughs_of_the_stack():
    config = stack_config("aws-dev")
    config["dragonfarm:usage"]["gpu_node_hours"]["trian"] = 10
    config["dragonfarm:usage"]["gpu_node_hours"]["infer"] = 5000
    assert errors(config) == [
        "s.yaml: dragonfarm:usage.gpu_node_hours.infer: got 5000; allowed: 0 to 2920 (max_nodes 4 x 730 h)",
        "s.yaml: dragonfarm:usage.gpu_node_hours.trian: got 'trian'; allowed: a GPU pool of the stack: train, infer"]


def test_collection_keys_follow_the_naming_rule():
    config = aws()
    config["dragonfarm:troughs"]["Data_Sets"] = {"purpose": "datasets"}
    assert errors(config) == ["s.yaml: dragonfarm:troughs.Data_Sets: got 'Data_Sets'; allowed: a key of 2-20 characters: "
                              "lowercase letters, digits and hyphens, starting with a letter"]


def test_every_problem_is_reported_at_once():
    config = aws(cloud="aws", environment="staging", fence={"cidr": "10.0.0.1/16"})
    assert len(errors(config)) == 2


def test_cli_prints_one_line_per_problem_and_exits_2(tmp_path):
    import yaml

    config = aws(cloud="ibm")
    config["dragonfarm:fencee"] = {}
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    run = subprocess.run([sys.executable, "-m", "dragonfarm.cli", "plan", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)
    assert "Traceback" not in run.stderr and run.stdout == ""


def test_unknown_stack_name_is_bad_input():
    run = subprocess.run([sys.executable, "-m", "dragonfarm.cli", "plan", "nope-dev"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert "allowed: a stack under stacks/ (aws-dev, aws-prod, azure-dev, azure-prod, gcp-dev, gcp-prod)" in run.stderr


def test_azure_barn_time_zone_must_have_a_windows_name():
    # Azure auto-shutdown takes Windows time zone ids (devtestlab GlobalSchedule timeZoneId); the farm maps IANA names
    # through CLDR's windowsZones table and refuses one it cannot map instead of failing at deploy.
    config = stack_config("azure-dev")
    config["dragonfarm:barns"]["box"]["time_zone"] = "Pacific/Chatham"
    (line,) = errors(config)
    assert line.startswith("s.yaml: dragonfarm:barns.box.time_zone: got 'Pacific/Chatham'; allowed: a time zone azure schedules know "
                           "(windows_time_zones.csv): Africa/Johannesburg, America/Chicago")


def test_recover_key_vault_is_azure_only():
    config = aws()
    config["dragonfarm:fence"]["recover_key_vault"] = True
    assert errors(config) == ["s.yaml: dragonfarm:fence.recover_key_vault: got True; allowed: false here: it recovers the Key Vault "
                              "the Azure fence creates (not with existing_key_id)"]


def test_gcp_budget_needs_a_billing_account():
    config = stack_config("gcp-dev")
    del config["dragonfarm:ledger"]["billing_account"]
    assert errors(config) == ["s.yaml: dragonfarm:ledger.billing_account: got nothing; "
                              "allowed: a GCP billing account id such as 012345-6789AB-CDEF01 (required when cloud is gcp)"]


# ---- issue: the program must reach its own cluster; what EKS refuses is refused at load ----------------


def bg(**changes) -> dict:
    config = aws()
    config["dragonfarm:breeding_ground"].update(changes)
    return config


def test_the_deploy_path_is_an_explicit_choice():
    config = aws()
    del config["dragonfarm:breeding_ground"]["deploy_from"]
    assert errors(config) == ["s.yaml: dragonfarm:breeding_ground.deploy_from: got nothing; allowed: a value (this key is required)"]


def test_a_cluster_the_program_could_not_reach_is_refused():
    (line,) = errors(bg(public_endpoint_cidrs=[]))
    assert line.startswith("s.yaml: dragonfarm:breeding_ground.public_endpoint_cidrs: got []; allowed: the public CIDRs of the machines")
    (line,) = errors(bg(deploy_from="inside-network", public_endpoint_cidrs=[]))
    assert line.startswith("s.yaml: dragonfarm:breeding_ground.runner_cidrs: got []; allowed: the private CIDRs of the runners")


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "10.0.0.0/8", "192.168.1.0/24"])
def test_public_endpoint_cidrs_are_public_and_narrower_than_everything(cidr):
    # A public endpoint sees the caller's public address: a private range never matches, 0.0.0.0/0 opens the API to all.
    assert errors(bg(public_endpoint_cidrs=[cidr])) == [
        f"s.yaml: dragonfarm:breeding_ground.public_endpoint_cidrs[0]: got '{cidr}'; allowed: a public CIDR narrower than "
        "0.0.0.0/0 (a public endpoint sees the caller's public address)"]


def test_runner_cidrs_are_private():
    config = bg(deploy_from="inside-network", public_endpoint_cidrs=[], runner_cidrs=["8.8.8.0/24"])
    assert errors(config) == ["s.yaml: dragonfarm:breeding_ground.runner_cidrs[0]: got '8.8.8.0/24'; allowed: a private CIDR "
                              "(RFC 1918 or 100.64.0.0/10) inside or connected to the farm's network"]


def test_kubernetes_version_outside_eks_standard_support_is_refused():
    # EKS release calendar: 1.31 standard support ended 2025-11-26 (before today, 2026-11-24 or later).
    (line,) = errors(bg(kubernetes_version="1.31"))
    assert line.startswith("s.yaml: dragonfarm:breeding_ground.kubernetes_version: got '1.31'; allowed: a version in aws standard support")
    assert "1.31 left standard support on 2025-11-26" in line
    (line,) = errors(bg(kubernetes_version="1.99"))
    assert line.endswith("(not a version aws offers)")


def test_version_window_is_data_with_dates():
    from datetime import date

    from components.breeding_ground import versions

    # 1.34: released 2025-10-02, standard support until 2026-12-02 (EKS release calendar).
    assert versions.problem("aws", "1.34", date(2026, 12, 1)) is None
    assert "left standard support on 2026-12-02" in versions.problem("aws", "1.34", date(2026, 12, 2))
    assert "not released on aws until 2025-10-02" in versions.problem("aws", "1.34", date(2025, 9, 1))
    # 1.36 reached EKS on 2026-06-02 but no add-on versions are pinned for it: an EKS cluster cannot be built
    # without them, so it is refused with the fix, not accepted and left to fail at the first addon.
    assert versions.problem("aws", "1.36", date(2026, 12, 4)) == (
        "a version in aws standard support today (2026-12-04): 1.35, 1.36; 1.36 has no versions pinned in addon_versions.csv "
        "for coredns, eks-pod-identity-agent, kube-proxy, vpc-cni yet (add its rows, with a source, to use it)")


@pytest.mark.parametrize("team", ["default", "kube-system", "kube-fun"])
def test_team_names_the_cluster_already_uses_are_refused(team):
    config = aws()
    config["dragonfarm:breeding_ground"]["teams"] = {team: {"gpu_quota": 1}}
    assert errors(config) == [f"s.yaml: dragonfarm:breeding_ground.teams.{team}: got '{team}'; allowed: a team name that is not a "
                              "namespace the cluster already has (default, kube-*)"]


def test_guaranteed_quotas_cannot_exceed_what_the_pools_supply():
    # aws-dev: serving takes its quota from pool infer (4 nodes x 1 L4 = 4 GPUs); asking 5 cannot be met.
    config = aws()
    config["dragonfarm:breeding_ground"]["teams"]["serving"]["gpu_quota"] = 5
    assert errors(config) == ["s.yaml: dragonfarm:breeding_ground.teams.serving.gpu_quota: got 5; allowed: at most 4: what its pools "
                              "(infer) have left after the teams served before it; the teams' guaranteed GPUs must fit in what the pools supply (12)"]
    config = aws()
    config["dragonfarm:breeding_ground"]["teams"]["serving"]["pools"] = ["inference"]
    assert errors(config) == ["s.yaml: dragonfarm:breeding_ground.teams.serving.pools[0]: got 'inference'; allowed: a GPU pool of the "
                              "stack: train, infer"]


def test_people_are_iam_principal_arns():
    config = bg(admins=["alice@example.com"])
    assert errors(config) == ["s.yaml: dragonfarm:breeding_ground.admins[0]: got 'alice@example.com'; allowed: an IAM role or user ARN "
                              "such as arn:aws:iam::123456789012:role/ml-admins"]


def test_trough_access_names_a_trough_of_the_stack():
    config = aws()
    config["dragonfarm:breeding_ground"]["teams"]["serving"]["troughs"] = {"feature-store": "read"}
    assert errors(config) == ["s.yaml: dragonfarm:breeding_ground.teams.serving.troughs.feature-store: got 'feature-store'; "
                              "allowed: a trough of the stack: datasets, checkpoints, models, logs"]
    config = aws()
    config["dragonfarm:barns"]["devbox"]["troughs"] = {"models": "write"}
    (line,) = errors(config)
    assert line.startswith("s.yaml: dragonfarm:barns.devbox.troughs.models: got 'write'; allowed: one of read or read-write")


def test_an_existing_network_needs_real_ids_and_two_zones():
    one = {"network_id": "vpc-0abc12345", "private_subnet_ids": ["subnet-0aaa1111"]}
    assert errors(aws(fence={"existing_network": one})) == [
        "s.yaml: dragonfarm:fence.existing_network.private_subnet_ids: got ['subnet-0aaa1111']; allowed: at least 2 distinct "
        "subnets on aws, one per zone"]
    bad = {"network_id": "my-vpc", "private_subnet_ids": ["subnet-0aaa1111", "10.0.1.0/24"]}
    assert errors(aws(fence={"existing_network": bad})) == [
        "s.yaml: dragonfarm:fence.existing_network.network_id: got 'my-vpc'; allowed: a VPC id such as vpc-0123456789abcdef0",
        "s.yaml: dragonfarm:fence.existing_network.private_subnet_ids[1]: got '10.0.1.0/24'; allowed: a subnet id such as "
        "subnet-0123456789abcdef0"]


def test_dev_box_stop_time_and_zone():
    config = aws()
    config["dragonfarm:barns"]["devbox"]["nightly_stop"] = "25:00"
    (line,) = errors(config)
    assert line.startswith("s.yaml: dragonfarm:barns.devbox.nightly_stop: got '25:00'; allowed: String should match pattern")
    config = aws()
    config["dragonfarm:barns"]["devbox"]["time_zone"] = "Mars/Olympus"
    assert errors(config) == ["s.yaml: dragonfarm:barns.devbox.time_zone: got 'Mars/Olympus'; allowed: an IANA time zone such as "
                              "UTC or Europe/Berlin"]


# ---- the config file itself -------------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dragonfarm.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_a_duplicate_yaml_key_is_an_error(tmp_path):
    # PyYAML keeps the last of two equal keys: a second `environment: dev` would silently turn protection off.
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config:\n  dragonfarm:environment: prod\n  dragonfarm:environment: dev\n")
    run = cli("plan", str(path))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr == (f"error: {path}: line 3: not valid YAML (duplicate key 'dragonfarm:environment' (first at line 2); "
                          "allowed: each key once per mapping)\n")


def test_binary_file_and_missing_path_get_one_line(tmp_path):
    path = tmp_path / "Pulumi.bin.yaml"
    path.write_bytes(bytes(range(256)))
    run = cli("plan", str(path))
    assert (run.returncode, run.stderr) == (2, f"error: {path}: got a file that is not UTF-8 text; allowed: a Pulumi stack YAML file\n")
    run = cli("plan", "stacks/aws-dev")
    assert run.returncode == 2 and run.stderr.startswith("error: stack 'stacks/aws-dev': no such stack file; allowed: a stack under stacks/")


def test_unwritable_out_path_is_bad_input(tmp_path):
    run = cli("plan", "aws-dev", "--out", str(tmp_path / "missing-dir" / "plan.json"))
    assert run.returncode == 2 and run.stderr.startswith(f"error: --out {tmp_path}/missing-dir/plan.json: cannot write it")


def test_a_version_yaml_reads_as_a_number_says_how_to_quote_it(tmp_path):
    config = aws()
    config["dragonfarm:breeding_ground"]["kubernetes_version"] = "@@"
    path = tmp_path / "Pulumi.s.yaml"
    path.write_text(yaml.safe_dump({"config": config}).replace("'@@'", "1.30"))
    from dragonfarm.stacks import read_config

    assert errors(read_config(path)) == ["s.yaml: dragonfarm:breeding_ground.kubernetes_version: got 1.3; allowed: a string: quote it "
                                         "in the YAML ('1.30'); unquoted, YAML reads 1.30 as the number 1.3"]


def test_numbers_have_sane_upper_bounds():
    config = aws()
    config["dragonfarm:breeding_ground"]["gpu_pools"]["train"]["max_nodes"] = 10**32
    config["dragonfarm:ledger"]["monthly_budget"] = float("inf")
    lines = errors(config)
    assert lines[0].startswith("s.yaml: dragonfarm:breeding_ground.gpu_pools.train.max_nodes: got 100000000000000000000000000000000; "
                               "allowed: less than or equal to 1000")
    assert lines[1].startswith("s.yaml: dragonfarm:ledger.monthly_budget: got inf; allowed:")


def test_a_repeated_alert_email_is_refused():
    config = aws()
    config["dragonfarm:ledger"]["alert_emails"] = ["ml@example.com", "ML@example.com"]
    assert errors(config) == ["s.yaml: dragonfarm:ledger.alert_emails[1]: got 'ML@example.com'; allowed: each address once "
                              "(a repeated address is a second subscription with the same name)"]


# ---- names the cloud or the cluster would refuse ------------------------------------------------------------


def pool(**settings) -> dict:
    config = aws()
    config["dragonfarm:breeding_ground"]["gpu_pools"]["infer"].update(settings)
    return config


@pytest.mark.parametrize("labels, line", [
    ({"karpenter.sh/capacity-type": "spot"}, "got 'karpenter.sh/capacity-type'; allowed: a label key outside the domains"),
    ({"node.kubernetes.io/role": "gpu"}, "got 'node.kubernetes.io/role'; allowed: a label key outside the domains"),
    ({"team": "ML Research"}, "got 'ML Research'; allowed: a Kubernetes label value"),
    ({"-bad": "x"}, "got '-bad'; allowed: a Kubernetes label key"),
])
def test_pool_labels_are_valid_and_outside_reserved_domains(labels, line):
    (got,) = errors(pool(labels=labels))
    assert got.startswith(f"s.yaml: dragonfarm:breeding_ground.gpu_pools.infer.labels.{next(iter(labels))}: {line}")


def test_taint_values_are_label_values():
    (got,) = errors(pool(taints=[{"key": "dedicated", "value": "gpu only", "effect": "NoSchedule"}]))
    assert got.startswith("s.yaml: dragonfarm:breeding_ground.gpu_pools.infer.taints[0].value: got 'gpu only'; allowed: a taint value")


def test_capacity_reservation_id_is_an_ec2_id():
    (got,) = errors(pool(capacity="on-demand", capacity_reservation_id="my-reservation"))
    assert got == ("s.yaml: dragonfarm:breeding_ground.gpu_pools.infer.capacity_reservation_id: got 'my-reservation'; "
                   "allowed: an EC2 capacity reservation id such as cr-0123456789abcdef0")


@pytest.mark.parametrize("key, value, allowed", [
    ("aws:owner", "x", "a tag key not starting with 'aws:' (reserved by aws)"),
    ("owner", "ana<ops>", "an AWS tag: key 1-128 and value 0-256 letters, digits, spaces and _ . : / = + - @"),
    ("cost#center", "x", "an AWS tag: key 1-128 and value 0-256 letters, digits, spaces and _ . : / = + - @"),
])
def test_aws_tags_follow_the_tagging_rules(key, value, allowed):
    bad = value if key == "owner" else key
    assert errors(aws(tags={key: value})) == [f"s.yaml: dragonfarm:tags.{key}: got {bad!r}; allowed: {allowed}"]


@pytest.mark.parametrize("cidr, line", [
    ("10.0.0.0/12", "got '10.0.0.0/12'; allowed: a network from /16 to /24 on aws (a VPC takes /16 to /28"),
    ("10.0.0.0/26", "got '10.0.0.0/26'; allowed: a network from /16 to /24 on aws"),
])
def test_vpc_size_eks_accepts(cidr, line):
    (got,) = errors(aws(fence={"cidr": cidr}))
    assert got.startswith(f"s.yaml: dragonfarm:fence.cidr: {line}")


@pytest.mark.parametrize("services", ["100.100.0.0/16", "10.96.0.0/11", "10.96.0.0/25"])
def test_eks_service_range_is_private_and_sized(services):
    # EKS CreateCluster kubernetesNetworkConfig.serviceIpv4Cidr: within 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, /12 to /24.
    (got,) = errors(aws(fence={"cidr": "10.20.0.0/16", "services_cidr": services}))
    assert got == (f"s.yaml: dragonfarm:fence.services_cidr: got '{services}'; allowed: a private range (10.0.0.0/8, 172.16.0.0/12, "
                   "192.168.0.0/16) from /12 to /24 (EKS serviceIpv4Cidr)")


def test_regions_and_zones_that_do_not_exist_are_refused():
    # us-east-1 has zones a-f (regions.csv, from AWS's Regions and Availability Zones page): there is no us-east-1g.
    assert errors(aws(zones=["us-east-1a", "us-east-1g"])) == [
        "s.yaml: dragonfarm:zones[1]: got 'us-east-1g'; allowed: a zone us-east-1 has: us-east-1a, us-east-1b, us-east-1c, "
        "us-east-1d, us-east-1e, us-east-1f"]
    (line,) = errors(aws(region="us-north-7", zones=["us-north-7a", "us-north-7b"]))
    assert line.startswith("s.yaml: dragonfarm:region: got 'us-north-7'; allowed: a region of aws listed in components/fence/regions.csv: ")


def test_a_kubernetes_version_the_pinned_karpenter_does_not_support_is_refused(monkeypatch):
    from datetime import date

    from components.breeding_ground import charts, versions

    # Karpenter compatibility matrix (aws/karpenter-provider-aws, hack/docs/compatibilitymatrix_gen/compatibility.yaml):
    # 1.8.x supports Kubernetes 1.26-1.34, 1.14.x 1.26-1.36. A 1.8.1 controller on a 1.35 cluster fails its
    # version check on every reconcile and launches nothing.
    old = charts.Chart("oci://public.ecr.aws/karpenter/karpenter", "1.8.1", kubernetes=("1.26", "1.34"), clouds=("aws",))
    monkeypatch.setattr(charts, "ALL", (old,))
    assert versions.problem("aws", "1.35", date(2026, 12, 4)) == (
        "a version in aws standard support today (2026-12-04): 1.35, 1.36; the pinned charts do not support 1.35 yet: "
        "karpenter 1.8.1 (supports 1.26-1.34) (charts.py)")
    monkeypatch.undo()
    assert versions.problem("aws", "1.35", date(2026, 12, 4)) is None  # the shipped pin, 1.14.1, supports 1.35


def test_every_region_has_a_real_time_zone_and_regions_abroad_are_not_on_us_time():
    import zoneinfo
    from datetime import datetime

    from components.fence import regions
    for cloud in ("aws", "gcp", "azure"):
        for region in regions.regions(cloud):
            assert regions.time_zone(cloud, region) in zoneinfo.available_timezones(), (cloud, region)
    # Frankfurt (aws eu-central-1) is UTC+1 in winter; Tokyo (gcp asia-northeast1) UTC+9; Oregon (azure westus2) UTC-8.
    winter = datetime(2026, 1, 15, 12)
    for cloud, region, hours in (("aws", "eu-central-1", 1), ("gcp", "asia-northeast1", 9), ("azure", "westus2", -8)):
        offset = winter.replace(tzinfo=zoneinfo.ZoneInfo(regions.time_zone(cloud, region))).utcoffset()
        assert offset is not None and offset.total_seconds() == hours * 3600, (cloud, region)


def test_key_vault_name_never_ends_in_a_hyphen():
    from components.fence.spec import key_vault_name

    # A 17-character prefix: 'abcdefghijklmnopq-fence-kv' cut at 24 ends in '-'; Key Vault names end with a letter or digit.
    assert key_vault_name("abcdefghijklmnopq-fence") == "abcdefghijklmnopq-fence"
    assert key_vault_name("dfarm-azure-dev-fence") == "dfarm-azure-dev-fence-kv"  # azure-dev keeps its vault name
    config = stack_config("azure-dev")
    config["dragonfarm:prefix"] = "ml--farm"
    (line,) = errors(config)
    # Both of the fence's vaults (data keys; AKS etcd key) are named from the prefix.
    assert line.startswith("s.yaml: dragonfarm:fence.existing_key_id: got nothing; allowed: a key of your own, or a prefix giving "
                           "valid Key Vault names (got 'ml--farm-fence-kv', 'ml--farm-etcd-kv'")


def test_budget_subscriber_limits_and_amounts_per_cloud():
    config = aws()
    config["dragonfarm:ledger"]["alert_emails"] = [f"p{i}@example.com" for i in range(11)]
    assert errors(config) == ["s.yaml: dragonfarm:ledger.alert_emails: got '11 addresses'; allowed: at most 10 on aws "
                              "(a list address reaches more people)"]
    config = stack_config("gcp-dev")
    config["dragonfarm:ledger"]["monthly_budget"] = 99.5
    assert errors(config) == ["s.yaml: dragonfarm:ledger.monthly_budget: got 99.5; allowed: a whole amount on gcp "
                              "(the budget is set in whole units)"]


def test_a_pulumi_secret_is_refused_by_key_and_never_printed():
    # `pulumi config set --secret` writes {secure: <ciphertext>} into the stack file.
    config = aws()
    config["dragonfarm:tags"]["owner"] = {"secure": "v1:AAAAciphertextBBBB"}
    config["dragonfarm:ledger"]["alert_emails"] = [{"secure": "v1:CCCCciphertextDDDD"}]
    lines = errors(config)
    assert lines == [
        "s.yaml: dragonfarm:tags.owner: got 'a secret'; allowed: a plain value: this setting is not secret (it becomes names, "
        "tags or resource settings); set it without --secret",
        "s.yaml: dragonfarm:ledger.alert_emails[0]: got 'a secret'; allowed: a plain value: this setting is not secret (it becomes "
        "names, tags or resource settings); set it without --secret"]
    assert not any("ciphertext" in line for line in lines)


# ---- instance types offered in the region (offered.csv, from the SkyPilot catalogs) ----------------------


def test_a_gpu_pool_whose_types_the_region_lacks_is_refused_naming_where_they_are():
    # skypilot-catalog catalogs/v8/aws/vms.csv (commit 00148f2a): p5.48xlarge has rows for ap-northeast-1,
    # ap-northeast-2, ap-south-1, ap-southeast-2, ca-central-1, eu-north-1, eu-west-2, us-east-1, us-east-2,
    # us-west-1 and us-west-2, none for eu-west-1 (Ireland).
    config = aws(region="eu-west-1", zones=["eu-west-1a", "eu-west-1b"],
                 breeding_ground={**REACHABLE, "gpu_pools": {"train": {"gpu": "h100", "gpus_per_node": 8}}})
    assert errors(config) == [
        "s.yaml: dragonfarm:breeding_ground.gpu_pools.train.gpu: got 'h100'; allowed: a GPU offered in eu-west-1 (h100 x8: "
        "p5.48xlarge is offered in: ap-northeast-1, ap-northeast-2, ap-south-1, ap-southeast-2, ca-central-1, eu-north-1, "
        "eu-west-2, us-east-1, us-east-2, us-west-1, us-west-2)"]
    # The same pool in London plans; a region the catalog has nothing for (sa-east-1 in this version) is not refused.
    load_farm(aws(region="eu-west-2", zones=["eu-west-2a", "eu-west-2b"],
                  breeding_ground={**REACHABLE, "gpu_pools": {"train": {"gpu": "h100", "gpus_per_node": 8}}}), source="s.yaml")
    load_farm(aws(region="sa-east-1", zones=["sa-east-1a", "sa-east-1b"],
                  breeding_ground={**REACHABLE, "gpu_pools": {"train": {"gpu": "h100", "gpus_per_node": 8}}}), source="s.yaml")


def test_a_karpenter_pool_lists_only_the_types_the_region_offers(tmp_path):
    # SkyPilot AWS catalog: g5.12xlarge and g5.24xlarge (4 x A10G) both have eu-central-1 rows, so both are listed;
    # in us-east-1 too. A type without a row in the region would only make Karpenter fail to launch it.
    from components.breeding_ground.spec import GpuPoolSpec
    pool = GpuPoolSpec(gpu="a10g", gpus_per_node=4)
    assert pool.instance_types("aws", "eu-central-1") == ["g5.12xlarge", "g5.24xlarge"]
    pool = GpuPoolSpec(gpu="h100", gpus_per_node=8)
    assert pool.instance_types("aws", "eu-west-1") == [] and pool.instance_types("aws", "us-east-1") == ["p5.48xlarge"]


def test_a_system_pool_type_outside_the_catalog_is_refused():
    config = aws(breeding_ground={**REACHABLE, "system_pool": {"instance_type": "m7i.huge"}})
    assert errors(config) == [
        "s.yaml: dragonfarm:breeding_ground.system_pool.instance_type: got 'm7i.huge'; allowed: a CPU instance type of "
        "cpu_catalog.csv for aws: m6i.large, m6i.xlarge, m7g.large, m7g.xlarge, m7i.2xlarge, m7i.large, m7i.xlarge, t3.large, t3.xlarge"]


def test_a_dev_box_gpu_the_region_lacks_is_refused():
    # SkyPilot AWS catalog: no g6.* rows for eu-west-1 (L4 boxes are g6).
    config = aws(region="eu-west-1", zones=["eu-west-1a", "eu-west-1b"], breeding_ground=None,
                 barns={"box": {"gpu": "l4"}})
    (line,) = errors(config)
    assert line.startswith("s.yaml: dragonfarm:barns.box.gpu: got 'l4'; allowed: a GPU offered in eu-west-1 (l4 x1: "
                           "g6.xlarge, g6.2xlarge, g6.4xlarge are offered in: ")


def test_offered_regions_are_known_regions_and_every_catalog_type_has_a_row():
    import csv

    from components.breeding_ground import catalog
    from components.fence import regions
    rows = list(csv.DictReader((ROOT / "components/breeding_ground/offered.csv").open()))
    for row in rows:
        assert set(row["regions"].split()) <= set(regions.regions(row["cloud"])), row["instance_type"]
        assert row["source"] and row["checked"]
    listed = {(r["cloud"], r["instance_type"]) for r in rows}
    assert {(i.cloud, i.instance_type) for i in catalog.all_instances()} <= listed
    assert {(i.cloud, i.instance_type) for i in catalog.cpu_instances()} <= listed


# ---- GCP: what GKE and Compute Engine would refuse at deploy, refused at load ------------------------

def gcp_bg(**pool) -> dict:
    config = stack_config("gcp-dev")
    config["dragonfarm:breeding_ground"]["gpu_pools"] = {"l4": {"gpu": "l4", **pool}}
    return config


def test_gcp_gpu_the_region_does_not_sell_is_refused():
    # SkyPilot gcp/vms.csv (offered.csv): a3-highgpu-8g (8 x H100) has no us-east1 rows.
    config = gcp_bg(gpu="h100", gpus_per_node=8)
    config["dragonfarm:region"], config["dragonfarm:zones"] = "us-east1", ["us-east1-b"]
    (line,) = errors(config)
    assert line.startswith("s.yaml: dragonfarm:breeding_ground.gpu_pools.l4.gpu: got 'h100'; allowed: a GPU offered in us-east1 "
                           "(h100 x8: a3-highgpu-8g is offered in: asia-east1")


def test_gcp_gpu_none_of_the_stack_zones_sells_is_refused():
    # SkyPilot gcp/vms.csv: a2-ultragpu-1g (1 x A100 80GB) in us-central1-a and -c only.
    config = gcp_bg(gpu="a100-80gb")
    config["dragonfarm:zones"] = ["us-central1-b", "us-central1-f"]
    (line,) = errors(config)
    assert line == ("s.yaml: dragonfarm:breeding_ground.gpu_pools.l4.gpu: got 'a100-80gb'; allowed: a GPU sold in the stack's zones "
                    "(us-central1-b, us-central1-f): a2-ultragpu-1g is sold in us-central1-a, us-central1-c")


def test_gcp_gpu_count_the_machine_family_lacks_is_refused():
    # GCP GPU machine types: L4 comes as G2 with 1, 2, 4 or 8 GPUs; no 3.
    (line,) = errors(gcp_bg(gpus_per_node=3))
    assert line == "s.yaml: dragonfarm:breeding_ground.gpu_pools.l4.gpus_per_node: got 3; allowed: one of 1, 2, 4, 8 for l4 on gcp"


def test_gpu_pool_named_like_the_system_pool_is_refused():
    config = stack_config("gcp-dev")
    config["dragonfarm:breeding_ground"]["gpu_pools"] = {"system": {"gpu": "l4"}}
    config["dragonfarm:usage"]["gpu_node_hours"] = {"system": 10}
    (line,) = errors(config)
    assert line == "s.yaml: dragonfarm:breeding_ground.gpu_pools.system: got 'system'; allowed: a pool name other than system (the system pool's)"


def test_gcp_kubernetes_version_gke_no_longer_supports_is_refused():
    # GKE release schedule: 1.34 left standard support on 2026-10-01.
    config = stack_config("gcp-dev")
    config["dragonfarm:breeding_ground"]["kubernetes_version"] = "1.34"
    (line,) = errors(config)
    assert line.startswith("s.yaml: dragonfarm:breeding_ground.kubernetes_version: got '1.34'; allowed: a version in gcp standard support")
    assert "1.34 left standard support on 2026-10-01" in line


def test_a_feature_older_versions_lack_is_refused():
    from components.breeding_ground import versions

    # GKE custom compute classes: Standard from 1.30.3-gke.1451000 (features.csv rounds up to the minor 1.31).
    assert versions.feature_problem("gcp", "compute-class", "1.30") == \
        "1.31 or newer on gcp: spot-with-fallback pools (a ComputeClass ties their spot and on-demand node pools) need it"
    assert versions.feature_problem("gcp", "compute-class", "1.35") is None
    assert versions.feature_problem("aws", "compute-class", "1.30") is None  # no such row: Karpenter needs none


def test_gcp_group_as_team_member_and_efa_are_refused():
    config = gcp_bg(efa=True)
    config["dragonfarm:breeding_ground"]["teams"]["research"]["members"] = ["group:ml@example.com"]
    lines = errors(config)
    assert "s.yaml: dragonfarm:breeding_ground.gpu_pools.l4.efa: got True; allowed: false on gcp: the gcp blueprint does not build " \
           "GPU fabric networking (built on: aws)" in lines
    assert any(line.startswith("s.yaml: dragonfarm:breeding_ground.teams.research.members[0]: got 'group:ml@example.com'; "
                               "allowed: a user: or serviceAccount: principal") for line in lines)


def test_pool_settings_gke_cannot_honour_are_refused_not_ignored():
    config = gcp_bg(scale_down_after_minutes=5, expire_after_hours=72)
    assert errors(config) == [
        "s.yaml: dragonfarm:breeding_ground.gpu_pools.l4.scale_down_after_minutes: got 5; allowed: unset on gcp (the GKE and AKS "
        "cluster autoscalers have one cluster-wide scale-down delay; honoured on: aws)",
        "s.yaml: dragonfarm:breeding_ground.gpu_pools.l4.expire_after_hours: got 72; allowed: unset on gcp (GKE and AKS node pools "
        "have no node expiry; node image upgrades replace nodes; honoured on: aws)"]
