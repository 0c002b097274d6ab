"""The AWS blueprint: GPU pools, node classes, cluster, ledger and dev box values a user relies on."""

from __future__ import annotations

import json

import pytest

from tests.conftest import plan_config, planned, stack_config

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


def test_cluster_endpoint_is_private_and_secrets_encrypted():
    (cluster,) = planned("aws-dev").of_type("aws:eks/cluster:Cluster")
    vpc = cluster.inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True and vpc["endpointPublicAccess"] is False
    assert cluster.inputs["version"] == "1.33"
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert cluster.inputs["accessConfig"]["authenticationMode"] == "API"
    assert set(cluster.inputs["enabledClusterLogTypes"]) == {"api", "audit", "authenticator", "controllerManager", "scheduler"}
    (logs,) = [g for g in planned("aws-prod").of_type("aws:cloudwatch/logGroup:LogGroup") if "control-plane" in g.name]
    assert logs.inputs["retentionInDays"] == 365


def test_public_endpoint_only_for_listed_cidrs(tmp_path):
    config = stack_config("aws-dev")
    config["dragonfarm:breeding_ground"]["public_endpoint_cidrs"] = ["203.0.113.0/24"]
    (cluster,) = plan_config(config, tmp_path).of_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is True
    assert cluster.inputs["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]


def test_system_pool_is_small_and_on_demand():
    (group,) = planned("aws-prod").of_type("aws:eks/nodeGroup:NodeGroup")
    assert group.inputs["capacityType"] == "ON_DEMAND"
    assert group.inputs["scalingConfig"] == {"desiredSize": 2, "maxSize": 4, "minSize": 2}
    assert group.ignoreChanges == ["scalingConfig.desiredSize"]


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
    (identity,) = plan.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert (identity.inputs["namespace"], identity.inputs["serviceAccount"]) == ("kube-system", "karpenter")


def test_efa_pool_gets_the_efa_device_plugin_only_when_asked():
    charts = lambda stack: {r.inputs["chart"] for r in planned(stack).of_type("kubernetes:helm.sh/v3:Release")}
    assert "aws-efa-k8s-device-plugin" in charts("aws-prod")
    assert "aws-efa-k8s-device-plugin" not in charts("aws-dev")


def test_kueue_quota_matches_the_pools_spot_first():
    (queue,) = planned("aws-prod").of_type("kubernetes:kueue.x-k8s.io/v1beta1:ClusterQueue")
    flavors = queue.inputs["spec"]["resourceGroups"][0]["flavors"]
    assert [(f["name"], f["resources"][0]["nominalQuota"]) for f in flavors] == [("spot", 40), ("on-demand", 40)]  # 32 + 8
    labels = {f.inputs["metadata"]["name"]: f.inputs["spec"]["nodeLabels"]
              for f in planned("aws-prod").of_type("kubernetes:kueue.x-k8s.io/v1beta1:ResourceFlavor")}
    assert labels == {"spot": {"karpenter.sh/capacity-type": "spot"}, "on-demand": {"karpenter.sh/capacity-type": "on-demand"}}


def test_each_team_gets_namespace_queue_quota_and_default_deny():
    plan = planned("aws-dev")
    quotas = {q.inputs["metadata"]["namespace"]: q.inputs["spec"]["hard"] for q in plan.of_type("kubernetes:core/v1:ResourceQuota")}
    assert quotas["research"]["requests.nvidia.com/gpu"] == "8" and quotas["serving"]["requests.nvidia.com/gpu"] == "4"
    queues = plan.of_type("kubernetes:kueue.x-k8s.io/v1beta1:LocalQueue")
    assert {(q.inputs["metadata"]["namespace"], q.inputs["spec"]["clusterQueue"]) for q in queues} == {("research", "gpu"), ("serving", "gpu")}
    for policy in plan.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy"):
        assert policy.inputs["spec"]["podSelector"] == {} and policy.inputs["spec"]["policyTypes"] == ["Ingress"]
        assert policy.inputs["spec"]["ingress"] == [{"from": [{"podSelector": {}}]}]


def test_budget_has_four_notifications_on_the_farm_tag():
    (budget,) = planned("aws-dev").of_type("aws:budgets/budget:Budget")
    assert budget.inputs["limitAmount"] == "2000.00" and budget.inputs["timeUnit"] == "MONTHLY"
    assert budget.inputs["costFilters"] == [{"name": "TagKeyValue", "values": ["user:dragonfarm-farm$dfarm-aws-dev"]}]
    kinds = sorted((n["notificationType"], n["threshold"]) for n in budget.inputs["notifications"])
    assert kinds == [("ACTUAL", 50), ("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100)]
    assert all(n["subscriberEmailAddresses"] == ["ml-platform@example.com"] and len(n["subscriberSnsTopicArns"]) == 1
               for n in budget.inputs["notifications"])


def test_anomaly_detection_alerts_the_topic():
    plan = planned("aws-dev")
    (subscription,) = plan.of_type("aws:costexplorer/anomalySubscription:AnomalySubscription")
    assert subscription.inputs["frequency"] == "IMMEDIATE"
    assert subscription.inputs["thresholdExpression"]["dimension"]["values"] == ["100"]
    assert len(plan.of_type("aws:costexplorer/anomalyMonitor:AnomalyMonitor")) == 1


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


def test_dev_box_is_private_imdsv2_encrypted_and_stops_when_idle():
    plan = planned("aws-dev")
    (box,) = plan.of_type("aws:ec2/instance:Instance")
    assert box.inputs["instanceType"] == "g4dn.xlarge"
    assert box.inputs["associatePublicIpAddress"] is False
    assert box.inputs["metadataOptions"]["httpTokens"] == "required"
    assert box.inputs["rootBlockDevice"]["encrypted"] is True
    (alarm,) = plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarm.inputs["alarmActions"] == ["arn:aws:automate:us-east-1:ec2:stop"]
    assert alarm.inputs["period"] * alarm.inputs["evaluationPeriods"] == 60 * 60  # idle_minutes: 60
    assert (alarm.inputs["metricName"], alarm.inputs["comparisonOperator"], alarm.inputs["threshold"]) == (
        "CPUUtilization", "LessThanThreshold", 5)


def test_every_taggable_resource_gets_the_cost_tags_from_the_provider():
    plan = planned("aws-prod")
    (provider,) = plan.of_type("pulumi:providers:aws")
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags["dragonfarm-farm"] == "dfarm-aws-prod" and tags["cost-center"] == "ml-research"
    # Every AWS resource is created through that provider (no stray default provider).
    farm_children = [r for r in plan.resources if r.type.startswith("aws:")]
    assert farm_children and all("::dragonfarm:index:AwsFarm" in r.urn for r in farm_children)


def test_urns_of_pools_and_buckets_do_not_move_when_unrelated_settings_change(tmp_path):
    def urns(plan):
        keep = ("aws:s3/bucket:Bucket", NODEPOOL, NODECLASS, "aws:eks/cluster:Cluster", "aws:kms/key:Key")
        return {r.urn for r in plan.resources if r.type in keep}

    before = urns(planned("aws-dev"))
    config = stack_config("aws-dev")
    config["dragonfarm:ledger"]["monthly_budget"] = 9999
    config["dragonfarm:tags"]["owner"] = "someone-else"
    config["dragonfarm:breeding_ground"]["gpu_pools"]["train"]["max_nodes"] = 6
    config["dragonfarm:breeding_ground"]["teams"]["newteam"] = {"gpu_quota": 2}
    config["dragonfarm:troughs"]["extra"] = {"purpose": "logs"}
    after = urns(plan_config(config, tmp_path, name="aws-dev"))
    assert before <= after
    assert len(after - before) == 1  # only the new bucket


def test_vpc_cni_uses_pod_identity():
    plan = planned("aws-dev")
    (cni,) = [a for a in plan.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni"]
    (association,) = cni.inputs["podIdentityAssociations"]
    assert association["serviceAccount"] == "aws-node" and association["roleArn"].endswith("dfarm-aws-dev-cluster-vpc-cni")
