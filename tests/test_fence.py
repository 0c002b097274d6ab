"""Fence: the network and key values a user relies on, per cloud."""

from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from components.fence.spec import subnet_plan
from tests.conftest import plan_config, planned, stack_config

SUBNET = "aws:ec2/subnet:Subnet"


def test_aws_private_subnets_span_the_zones_and_hand_out_no_public_ips():
    plan = planned("aws-dev")
    private = [r for r in plan.of_type(SUBNET) if "-private-" in r.name]
    assert sorted(r.inputs["availabilityZone"] for r in private) == ["us-east-1a", "us-east-1b"]
    assert all(r.inputs["mapPublicIpOnLaunch"] is False for r in plan.of_type(SUBNET))
    assert all(r.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1" for r in private)


def test_aws_private_routes_go_through_nat_not_the_internet_gateway():
    plan = planned("aws-prod")
    routes = [r for r in plan.of_type("aws:ec2/route:Route") if "-private-" in r.name]
    assert len(routes) == 3 and all("natGatewayId" in r.inputs and "gatewayId" not in r.inputs for r in routes)


def test_aws_nat_is_single_in_dev_and_per_zone_in_prod():
    assert len(planned("aws-dev").of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(planned("aws-prod").of_type("aws:ec2/natGateway:NatGateway")) == 3


def test_aws_s3_gateway_endpoint_serves_the_private_route_tables():
    (endpoint,) = planned("aws-dev").of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["serviceName"] == "com.amazonaws.us-east-1.s3"
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"
    assert len(endpoint.inputs["routeTableIds"]) == 2


def test_aws_flow_logs_are_kept_and_encrypted():
    plan = planned("aws-prod")
    (flow,) = plan.of_type("aws:ec2/flowLog:FlowLog")
    assert flow.inputs["trafficType"] == "ALL"
    (group,) = [g for g in plan.of_type("aws:cloudwatch/logGroup:LogGroup") if g.name.endswith("-flow-logs")]
    assert group.inputs["retentionInDays"] == 365
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:us-east-1:")


def test_aws_key_rotates_and_is_protected_only_in_prod():
    (dev_key,) = planned("aws-dev").of_type("aws:kms/key:Key")
    (prod_key,) = planned("aws-prod").of_type("aws:kms/key:Key")
    assert dev_key.inputs["enableKeyRotation"] is True and prod_key.inputs["enableKeyRotation"] is True
    assert (dev_key.protect, prod_key.protect, prod_key.retainOnDelete) == (False, True, True)


def test_aws_default_security_group_has_no_rules():
    (sg,) = planned("aws-dev").of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert "ingress" not in sg.inputs and "egress" not in sg.inputs


def test_aws_cost_tags_are_provider_default_tags():
    import json

    (provider,) = planned("aws-dev").of_type("pulumi:providers:aws")
    tags = json.loads(provider.inputs["defaultTags"])["tags"]
    assert tags == {"team": "ml-platform", "dragonfarm-farm": "dfarm-aws-dev", "dragonfarm-environment": "dev", "managed-by": "dragonfarm"}


def test_bring_your_own_network_creates_no_network(tmp_path):
    config = stack_config("aws-dev")
    config["dragonfarm:fence"] = {"existing_network": {"network_id": "vpc-0abc12345", "private_subnet_ids": ["subnet-0aaa1111", "subnet-0bbb2222"]}}
    plan = plan_config(config, tmp_path)
    assert plan.of_type("aws:ec2/vpc:Vpc") == [] and plan.of_type(SUBNET) == []
    assert len(plan.of_type("aws:kms/key:Key")) == 1


def test_bring_your_own_key_creates_no_key(tmp_path):
    config = stack_config("aws-dev")
    arn = "arn:aws:kms:us-east-1:123456789012:key/existing"
    config["dragonfarm:fence"] = {"cidr": "10.20.0.0/16", "existing_key_id": arn}
    plan = plan_config(config, tmp_path)
    assert plan.of_type("aws:kms/key:Key") == []
    sse = plan.of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert {r.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] for r in sse} == {arn}


def test_subnet_plan_is_stable_when_a_zone_is_added():
    two, _ = subnet_plan(IPv4Network("10.20.0.0/16"), 2)
    three, _ = subnet_plan(IPv4Network("10.20.0.0/16"), 3)
    assert two == ["10.20.0.0/18", "10.20.64.0/18"] and three[:2] == two


def test_gcp_subnet_is_private_with_pod_and_service_ranges():
    plan = planned("gcp-dev")
    (subnet,) = plan.of_type("gcp:compute/subnetwork:Subnetwork")
    assert subnet.inputs["privateIpGoogleAccess"] is True
    assert {r["rangeName"]: r["ipCidrRange"] for r in subnet.inputs["secondaryIpRanges"]} == {
        "pods": "10.64.0.0/14", "services": "10.96.0.0/16"}
    (network,) = plan.of_type("gcp:compute/network:Network")
    assert network.inputs["autoCreateSubnetworks"] is False
    (nat,) = plan.of_type("gcp:compute/routerNat:RouterNat")
    assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"


def test_gcp_key_rotates_and_storage_agent_may_use_it():
    plan = planned("gcp-dev")
    (key,) = plan.of_type("gcp:kms/cryptoKey:CryptoKey")
    assert key.inputs["rotationPeriod"] == "7776000s"
    grants = plan.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    assert {g.inputs["role"] for g in grants} == {"roles/cloudkms.cryptoKeyEncrypterDecrypter"}
    # Cloud Storage, Compute Engine and GKE service agents (bucket, disk and Secrets CMEK); nobody else.
    assert sorted(g.inputs["member"].split("@")[1] for g in grants) == [
        "compute-system.iam.gserviceaccount.com", "container-engine-robot.iam.gserviceaccount.com", "gs-project-accounts.iam.gserviceaccount.com"]


@pytest.mark.parametrize("stack, days", [("gcp-dev", 90), ("gcp-prod", 365)])
def test_gcp_logs_are_kept_log_retention_days(stack, days):
    # Flow logs and GKE logs go to the project's _Default bucket (Cloud Logging default 30 days): the stack's
    # retention is set there (gcp-prod asks 365; gcp-dev keeps the spec default, 90).
    (bucket,) = planned(stack).of_type("gcp:logging/projectBucketConfig:ProjectBucketConfig")
    assert (bucket.inputs["bucketId"], bucket.inputs["location"], bucket.inputs["retentionDays"]) == ("_Default", "global", days)


def test_azure_network_denies_internet_inbound_and_nat_serves_nodes():
    plan = planned("azure-dev")
    for nsg in plan.of_type("azure-native:network:NetworkSecurityGroup"):
        (rule,) = nsg.inputs["securityRules"]
        assert (rule["access"], rule["direction"], rule["sourceAddressPrefix"]) == ("Deny", "Inbound", "Internet")
    nodes = plan.one("azure-native:network:Subnet", "dfarm-az-dev-fence-nodes")
    assert "natGateway" in nodes.inputs and nodes.inputs["defaultOutboundAccess"] is False


def test_azure_vault_is_purge_protected_and_key_is_rsa_3072():
    plan = planned("azure-dev")
    vault = plan.one("azure-native:keyvault:Vault", "dfarm-az-dev-fence-kv")
    props = vault.inputs["properties"]
    assert props["enablePurgeProtection"] is True and props["enableRbacAuthorization"] is True
    assert props["networkAcls"]["defaultAction"] == "Deny"
    key = plan.one("azure-native:keyvault:Key", "dfarm-az-dev-fence-key")
    assert (key.inputs["properties"]["kty"], key.inputs["properties"]["keySize"]) == ("RSA", 3072)


def test_gcp_enables_the_apis_it_calls_before_using_them():
    # A fresh project has compute, container, cloudkms, billingbudgets, monitoring and pubsub disabled (Service
    # Usage); google_project_service with disable_on_destroy=false enables them and leaves them on at destroy.
    plan = planned("gcp-dev")
    services = {r.inputs["service"]: r for r in plan.of_type("gcp:projects/service:Service")}
    assert {"compute.googleapis.com", "container.googleapis.com", "cloudkms.googleapis.com", "billingbudgets.googleapis.com",
            "monitoring.googleapis.com", "pubsub.googleapis.com", "storage.googleapis.com"} <= set(services)
    assert all(s.inputs["disableOnDestroy"] is False for s in services.values())
    (ring,) = plan.of_type("gcp:kms/keyRing:KeyRing")
    (budget,) = plan.of_type("gcp:billing/budget:Budget")
    assert services["cloudkms.googleapis.com"].urn in ring.dependsOn
    assert services["billingbudgets.googleapis.com"].urn in budget.dependsOn
    # Enabling an API goes through Service Usage and Cloud Resource Manager: prerequisites, not managed here.
    assert not {"serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com"} & set(services)
    # Only the budget goes through a provider that bills its calls to the farm's project (the Budgets API needs
    # a quota project with user credentials); on every provider it would send X-Goog-User-Project on all calls.
    providers = {p.name: p for p in plan.of_type("pulumi:providers:gcp")}
    assert providers["gcp-billing"].inputs["userProjectOverride"] == "true"
    assert providers["gcp-billing"].inputs["billingProject"] == "dfarm-ml-dev"
    assert "userProjectOverride" not in providers["gcp"].inputs
    assert budget.provider == providers["gcp-billing"].urn
    # The whole project is budgeted: a label filter ANDs with it and drops unlabelled spend such as Cloud NAT.
    assert budget.inputs["budgetFilter"] == {"calendarPeriod": "MONTH", "projects": ["projects/424242424242"]}


def test_gcp_adopts_the_key_ring_and_key_a_destroyed_stack_left_behind(monkeypatch, tmp_path):
    # Cloud KMS key rings and keys cannot be deleted (a destroy only forgets them); creating them again is a 409.
    # When they exist, the fence imports them instead of creating them.
    from components.fence import gcp as gcp_fence

    ring = "projects/dfarm-ml-dev/locations/us-central1/keyRings/dfarm-gcp-dev-fence-keyring"
    monkeypatch.setattr(gcp_fence, "existing_kms", lambda *args: (ring, f"{ring}/cryptoKeys/dfarm-gcp-dev-fence-data"))
    plan = plan_config(stack_config("gcp-dev"), tmp_path, name="gcp-dev")
    (key_ring,) = plan.of_type("gcp:kms/keyRing:KeyRing")
    (key,) = plan.of_type("gcp:kms/cryptoKey:CryptoKey")
    assert key_ring.importId == ring and key.importId == f"{ring}/cryptoKeys/dfarm-gcp-dev-fence-data"
    # Destroy leaves the key's versions (deletion_policy ABANDON); the default would destroy every version and
    # stop rotation, and an adopted key could then encrypt nothing (terraform-provider-google kms_crypto_key).
    assert key.inputs["deletionPolicy"] == "ABANDON"
    assert planned("gcp-dev").of_type("gcp:kms/keyRing:KeyRing")[0].importId == ""  # a fresh project: created


def test_gcp_key_lookup_failures_other_than_a_disabled_api_stop_the_deploy(monkeypatch):
    import pulumi
    import pytest

    from components.fence import gcp as gcp_fence

    def disabled(**_):
        raise Exception("googleapi: Error 403: Cloud Key Management Service (KMS) API has not been used in project 42 before or it is disabled. SERVICE_DISABLED")

    def denied(**_):
        raise Exception("googleapi: Error 403: Permission 'cloudkms.keyRings.list' denied")

    monkeypatch.setattr(gcp_fence.kms, "get_key_rings", disabled)
    assert gcp_fence.existing_kms("p", "us-central1", "r", "k", pulumi.InvokeOptions()) == (None, None)  # nothing to adopt
    monkeypatch.setattr(gcp_fence.kms, "get_key_rings", denied)
    with pytest.raises(pulumi.RunError, match="could not check for the farm's KMS key ring r"):
        gcp_fence.existing_kms("p", "us-central1", "r", "k", pulumi.InvokeOptions())
