"""The AWS blueprint: GPU pools, node classes, cluster, ledger and dev box values a user relies on."""

from __future__ import annotations

import json

import pytest

from tests.conftest import plan_config, planned, stack_config, urns_of

NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


def pools(stack: str) -> dict[str, dict]:
    return {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in planned(stack).of_type(NODEPOOL)}


def requirement(pool: dict, key: str) -> list[str]:
    (req,) = [r for r in pool["template"]["spec"]["requirements"] if r["key"] == key]
    assert req["operator"] == "In"
    return req["values"]


def test_dev_gpu_pools_are_spot_only():
    for name, pool in pools("aws-dev").items():
        assert requirement(pool, "karpenter.sh/capacity-type") == ["spot"], name


def test_prod_gpu_pools_prefer_spot_and_fall_back_to_on_demand():
    for name, pool in pools("aws-prod").items():
        assert requirement(pool, "karpenter.sh/capacity-type") == ["spot", "on-demand"], name


def test_instance_types_come_from_the_gpu_catalog():
    dev = pools("aws-dev")
    assert requirement(dev["train"], "node.kubernetes.io/instance-type") == ["g5.12xlarge", "g5.24xlarge"]  # a10g x4
    assert requirement(dev["infer"], "node.kubernetes.io/instance-type") == ["g6.xlarge", "g6.2xlarge", "g6.4xlarge"]  # l4 x1
    assert requirement(pools("aws-prod")["train-h100"], "node.kubernetes.io/instance-type") == ["p5.48xlarge"]


def test_gpu_limit_is_max_nodes_times_gpus_per_node():
    dev, prod = pools("aws-dev"), pools("aws-prod")
    assert dev["train"]["limits"] == {"nvidia.com/gpu": "8"}  # 2 nodes x 4
    assert dev["infer"]["limits"] == {"nvidia.com/gpu": "4"}  # 4 nodes x 1
    assert prod["train-h100"]["limits"] == {"nvidia.com/gpu": "32"}  # 4 nodes x 8


def test_gpu_pools_are_tainted_and_scale_to_zero_when_empty():
    for name, pool in {**pools("aws-dev"), **pools("aws-prod")}.items():
        assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"} in pool["template"]["spec"]["taints"], name
        assert pool["disruption"]["consolidationPolicy"] == "WhenEmpty", name
    assert pools("aws-dev")["infer"]["disruption"]["consolidateAfter"] == "10m"
    assert pools("aws-dev")["train"]["disruption"]["consolidateAfter"] == "15m"


def test_node_classes_enforce_imdsv2_and_encrypted_gp3():
    classes = planned("aws-prod").of_type(NODECLASS)
    assert {c.inputs["metadata"]["name"] for c in classes} == {"train-h100", "infer"}
    for node_class in classes:
        spec = node_class.inputs["spec"]
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        (device,) = spec["blockDeviceMappings"]
        assert device["ebs"]["encrypted"] is True and device["ebs"]["volumeType"] == "gp3"
        assert device["ebs"]["kmsKeyID"].startswith("arn:aws:kms:")
        assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "dfarm-aws-prod"}}]
    h100 = next(c for c in classes if c.inputs["metadata"]["name"] == "train-h100")
    assert h100.inputs["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] == "1000Gi"


def test_private_subnets_carry_the_karpenter_discovery_tag():
    private = [s for s in planned("aws-prod").of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name]
    assert all(s.inputs["tags"]["karpenter.sh/discovery"] == "dfarm-aws-prod" for s in private)


def test_cluster_api_is_reachable_from_where_pulumi_runs():
    # aws-dev deploys from the internet: public endpoint limited to the listed public CIDRs (private on for nodes).
    (dev,) = planned("aws-dev").of_type("aws:eks/cluster:Cluster")
    assert dev.inputs["vpcConfig"]["endpointPrivateAccess"] is True and dev.inputs["vpcConfig"]["endpointPublicAccess"] is True
    assert dev.inputs["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert planned("aws-dev").of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") == []
    # aws-prod deploys from a runner inside the VPC: private endpoint only, and the cluster security group
    # (the only one on the EKS-managed endpoint interfaces) admits 443 from the runners' range.
    prod = planned("aws-prod")
    (cluster,) = prod.of_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is False and "publicAccessCidrs" not in cluster.inputs["vpcConfig"]
    (rule,) = prod.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert (rule.inputs["cidrIpv4"], rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == ("10.10.0.0/16", 443, 443, "tcp")
    assert rule.inputs["securityGroupId"].startswith("sg-")


def test_cluster_secrets_logs_and_version():
    (cluster,) = planned("aws-dev").of_type("aws:eks/cluster:Cluster")
    # 1.35 is in EKS standard support until 2027-03-27 (kubernetes_versions.csv, EKS release calendar).
    assert cluster.inputs["version"] == "1.35"
    assert cluster.inputs["upgradePolicy"] == {"supportType": "STANDARD"}
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert cluster.inputs["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    assert set(cluster.inputs["enabledClusterLogTypes"]) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    (logs,) = [g for g in planned("aws-prod").of_type("aws:cloudwatch/logGroup:LogGroup") if "control-plane" in g.name]
    assert logs.inputs["retentionInDays"] == 365


def test_system_pool_is_small_on_demand_and_tagged():
    plan = planned("aws-prod")
    (group,) = [g for g in plan.of_type("aws:eks/nodeGroup:NodeGroup") if g.name.endswith("-system")]
    assert group.inputs["capacityType"] == "ON_DEMAND" and group.inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert group.inputs["scalingConfig"] == {"desiredSize": 2, "maxSize": 4, "minSize": 2}
    assert group.ignoreChanges == ["scalingConfig.desiredSize"]
    # Node group tags do not reach instances: the launch template tags instances, volumes and interfaces.
    (template,) = [t for t in plan.of_type("aws:ec2/launchTemplate:LaunchTemplate") if t.name.endswith("-system")]
    assert group.inputs["launchTemplate"]["id"].startswith("lt-")
    kinds = {spec["resourceType"]: spec["tags"] for spec in template.inputs["tagSpecifications"]}
    assert set(kinds) == {"instance", "volume", "network-interface"}
    assert all(tags["dragonfarm-farm"] == "dfarm-aws-prod" and tags["cost-center"] == "ml-research" for tags in kinds.values())
    assert template.inputs["metadataOptions"]["httpTokens"] == "required"
    (device,) = template.inputs["blockDeviceMappings"]
    assert device["ebs"]["encrypted"] == "true" and device["ebs"]["kmsKeyId"].startswith("arn:aws:kms:")


def test_core_addons_and_charts_are_pinned():
    plan = planned("aws-dev")
    addons = {a.inputs["addonName"]: a.inputs["addonVersion"] for a in plan.of_type("aws:eks/addon:Addon")}
    assert set(addons) == {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent"} and all(addons.values())
    releases = plan.of_type("kubernetes:helm.sh/v3:Release")
    assert {r.inputs["chart"].rsplit("/", 1)[-1] for r in releases} == {"karpenter", "nvidia-device-plugin", "dcgm-exporter", "kueue"}
    assert all(r.inputs.get("version") for r in releases)


def test_karpenter_interruption_queue_gets_the_spot_events():
    plan = planned("aws-dev")
    patterns = [json.loads(r.inputs["eventPattern"])["detail-type"][0] for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")]
    assert "EC2 Spot Instance Interruption Warning" in patterns and "EC2 Instance Rebalance Recommendation" in patterns
    assert len(plan.of_type("aws:cloudwatch/eventTarget:EventTarget")) == len(patterns)
    (identity,) = [i for i in plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation") if i.name.endswith("-karpenter")]
    assert (identity.inputs["namespace"], identity.inputs["serviceAccount"]) == ("kube-system", "karpenter")


def test_efa_pool_gets_the_efa_device_plugin_only_when_asked():
    charts = lambda stack: {r.inputs["chart"] for r in planned(stack).of_type("kubernetes:helm.sh/v3:Release")}
    assert "aws-efa-k8s-device-plugin" in charts("aws-prod")
    assert "aws-efa-k8s-device-plugin" not in charts("aws-dev")


def test_budget_has_four_notifications_on_the_farm_tag():
    (budget,) = planned("aws-dev").of_type("aws:budgets/budget:Budget")
    assert budget.inputs["limitAmount"] == "2000.00" and budget.inputs["timeUnit"] == "MONTHLY"
    assert budget.inputs["costFilters"] == [{"name": "TagKeyValue", "values": ["user:dragonfarm-farm$dfarm-aws-dev"]}]
    kinds = sorted((n["notificationType"], n["threshold"]) for n in budget.inputs["notifications"])
    assert kinds == [("ACTUAL", 50), ("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)]
    assert all(n["subscriberEmailAddresses"] == ["ml-platform@example.com"] for n in budget.inputs["notifications"])


def test_anomaly_detection_alerts_the_topic():
    plan = planned("aws-dev")
    (subscription,) = plan.of_type("aws:costexplorer/anomalySubscription:AnomalySubscription")
    assert subscription.inputs["frequency"] == "IMMEDIATE"
    assert subscription.inputs["thresholdExpression"]["dimension"]["values"] == ["100"]
    (monitor,) = plan.of_type("aws:costexplorer/anomalyMonitor:AnomalyMonitor")
    # AWS allows one account-wide SERVICE monitor: the farm watches its own cost tag with a CUSTOM monitor
    # (Cost Explorer API AnomalyMonitor.MonitorSpecification is an Expression; Tags{Key, Values, MatchOptions}).
    assert monitor.inputs["monitorType"] == "CUSTOM" and "monitorDimension" not in monitor.inputs
    assert json.loads(monitor.inputs["monitorSpecification"]) == {
        "Tags": {"Key": "dragonfarm-farm", "Values": ["dfarm-aws-dev"], "MatchOptions": ["EQUALS"]}}


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_hard_stop_is_off_unless_asked(stack):
    assert planned(stack).of_type("aws:budgets/budgetAction:BudgetAction") == []


def test_hard_stop_denies_gpu_launches_to_the_karpenter_controller(tmp_path):
    config = stack_config("aws-dev")
    config["dragonfarm:ledger"]["hard_stop"] = True
    plan = plan_config(config, tmp_path)
    (action,) = plan.of_type("aws:budgets/budgetAction:BudgetAction")
    assert action.inputs["actionThreshold"] == {"actionThresholdType": "PERCENTAGE", "actionThresholdValue": 100}
    assert action.inputs["notificationType"] == "ACTUAL" and action.inputs["approvalModel"] == "AUTOMATIC"
    assert action.inputs["definition"]["iamActionDefinition"]["roles"] == ["dfarm-aws-dev-cluster-karpenter-controller"]
    (deny,) = [p for p in plan.of_type("aws:iam/policy:Policy") if "deny-gpu" in p.name]
    statement = json.loads(deny.inputs["policy"])["Statement"][0]
    assert statement["Effect"] == "Deny" and "ec2:CreateFleet" in statement["Action"]


def test_every_taggable_resource_gets_the_cost_tags_from_the_provider():
    plan = planned("aws-prod")
    (provider,) = plan.of_type("pulumi:providers:aws")
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags["dragonfarm-farm"] == "dfarm-aws-prod" and tags["cost-center"] == "ml-research"
    # Every AWS resource is created through that provider (no stray default provider).
    farm_children = [r for r in plan.resources if r.type.startswith("aws:")]
    assert farm_children and all("::dragonfarm:index:AwsFarm" in r.urn for r in farm_children)


def test_urns_of_pools_and_buckets_do_not_move_when_unrelated_settings_change(tmp_path):
    keep = ("aws:s3/bucket:Bucket", NODEPOOL, NODECLASS, "aws:eks/cluster:Cluster", "aws:kms/key:Key")
    before = urns_of(planned("aws-dev"), keep)
    config = stack_config("aws-dev")
    config["dragonfarm:ledger"]["monthly_budget"] = 9999
    config["dragonfarm:tags"]["owner"] = "someone-else"
    config["dragonfarm:breeding_ground"]["gpu_pools"]["train"]["max_nodes"] = 6
    config["dragonfarm:breeding_ground"]["teams"]["newteam"] = {"gpu_quota": 2}
    config["dragonfarm:troughs"]["extra"] = {"purpose": "logs"}
    after = urns_of(plan_config(config, tmp_path, name="aws-dev"), keep)
    assert before <= after
    assert len(after - before) == 1  # only the new bucket


def test_vpc_cni_uses_pod_identity():
    plan = planned("aws-dev")
    (cni,) = [a for a in plan.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni"]
    (association,) = cni.inputs["podIdentityAssociations"]
    assert association["serviceAccount"] == "aws-node" and association["roleArn"].endswith("dfarm-aws-dev-cluster-vpc-cni")
