"""Fence: the farm's network and identity boundary, cloud-neutral inputs.

A fence is one private network (VPC / VNet) with private subnets for nodes and endpoints, egress
through NAT, private access to the cloud's storage, flow logs, and one customer-managed encryption
key that the other layers use for data at rest. Bring your own network or key by id instead.
"""

from __future__ import annotations

import ipaddress
import re
from enum import Enum
from typing import Iterator

from ipaddress import IPv4Network

from pydantic import Field

from components.schema import Context, Problem, Spec


class NatMode(str, Enum):
    none = "none"
    single = "single"
    per_zone = "per-zone"


# CloudWatch Logs accepts only these retention periods; the same set is used on every cloud so a
# stack moves between clouds unchanged.
# Where control-plane logs go has its own bounds: an Azure Log Analytics workspace keeps 30 to 730 days interactively
# (Azure Monitor Logs "Manage data retention").
LOG_RETENTION_RANGE = {"azure": (30, 730, "an Azure Log Analytics workspace's retention")}
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


class ExistingNetwork(Spec):
    network_id: str = Field(min_length=1)
    """The existing network: AWS VPC id, GCP network self link, or Azure VNet resource id."""
    private_subnet_ids: list[str] = Field(min_length=1)
    """Private subnets the farm's nodes and endpoints go in (AWS: one per zone, at least two zones; GCP/Azure: one)."""

    def problems(self, ctx: Context) -> Iterator[Problem]:
        network, network_what, subnet, subnet_what, minimum = EXISTING_NETWORK_RULES[ctx.cloud]
        if not re.fullmatch(network, self.network_id):
            yield Problem("existing_network.network_id", self.network_id, network_what)
        for i, subnet_id in enumerate(self.private_subnet_ids):
            if not re.fullmatch(subnet, subnet_id):
                yield Problem(f"existing_network.private_subnet_ids[{i}]", subnet_id, subnet_what)
        if len(set(self.private_subnet_ids)) < minimum:
            yield Problem("existing_network.private_subnet_ids", self.private_subnet_ids,
                          f"at least {minimum} distinct subnets on {ctx.cloud}, one per zone")


# What the cloud's API takes as a network and subnet id, and how many subnets a cluster needs (EKS wants
# subnets in at least two Availability Zones: EKS user guide, "View Amazon EKS networking requirements").
EXISTING_NETWORK_RULES: dict[str, tuple[str, str, str, str, int]] = {
    "aws": (r"vpc-[0-9a-f]{8,17}", "a VPC id such as vpc-0123456789abcdef0", r"subnet-[0-9a-f]{8,17}",
            "a subnet id such as subnet-0123456789abcdef0", 2),
    "gcp": (r"(https://www.googleapis.com/compute/v1/)?projects/[a-z][a-z0-9-]+/global/networks/[a-z0-9-]+",
            "a network self link such as projects/p/global/networks/n",
            r"(https://www.googleapis.com/compute/v1/)?projects/[a-z][a-z0-9-]+/regions/[a-z0-9-]+/subnetworks/[a-z0-9-]+",
            "a subnetwork self link such as projects/p/regions/r/subnetworks/s", 1),
    "azure": (r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+",
              "a VNet resource id", r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+/subnets/[^/]+",
              "a subnet resource id", 1),
}


PRIVATE_RANGES = tuple(IPv4Network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
# The network sizes each cloud takes, narrowed to what subnet_plan can cut (quarters, and /28 edge subnets
# at the smallest): Amazon VPC User Guide "VPC CIDR blocks" (/16 to /28); GCP subnet ranges and Azure
# VNets take /8 and up.
NETWORK_SIZES: dict[str, tuple[int, int, str]] = {
    "aws": (16, 24, "a VPC takes /16 to /28; the fence cuts it in quarters with /28 edge subnets at the smallest"),
    "gcp": (8, 24, "the fence cuts it in quarters"),
    "azure": (8, 24, "the fence cuts it in quarters"),
}
# Kubernetes service range rules: EKS API KubernetesNetworkConfigRequest.serviceIpv4Cidr (RFC 1918, /12 to
# /24); AKS "Configure Azure CNI Overlay" (service CIDR smaller than /12); GKE: any range (not checked).
SERVICE_RANGES: dict[str, tuple[int, int, str] | None] = {
    "aws": (12, 24, "EKS serviceIpv4Cidr"),
    "azure": (13, 28, "AKS takes a service CIDR smaller than /12"),
    "gcp": None,
}


class FenceSpec(Spec):
    cidr: IPv4Network = IPv4Network("10.0.0.0/16")
    """Address space of the network (VPC / VNet), carved into private and public subnets."""
    pods_cidr: IPv4Network = IPv4Network("10.64.0.0/14")
    """Kubernetes pod range where the cluster uses one outside the network (GKE secondary range, AKS overlay)."""
    services_cidr: IPv4Network = IPv4Network("10.96.0.0/16")
    """Kubernetes service range; must not overlap the network or the pod range."""
    nat: NatMode | None = None
    """Egress NAT: none, single, or per-zone. Unset: single in dev (cheap), per-zone in prod (no cross-zone single point of failure)."""
    private_endpoints: bool = True
    """Reach the cloud's storage and APIs privately (S3 gateway endpoint, Private Google Access, Azure private endpoints)."""
    flow_logs: bool = True
    """Record network flow logs."""
    log_retention_days: int = 90
    """Retention of flow logs and control-plane logs, in days (a CloudWatch-accepted value; GCP: the project's _Default log bucket; Azure: the farm's Log Analytics workspace, 30 to 730)."""
    existing_network: ExistingNetwork | None = None
    """Use this network instead of creating one (then cidr must not be set)."""
    existing_key_id: str | None = None
    """Use this customer-managed key (AWS KMS key ARN, GCP CryptoKey id, Azure Key Vault key id) instead of creating one."""
    recover_key_vault: bool = False
    """Azure: recover the fence's soft-deleted Key Vault instead of creating it. A destroyed stack's vault keeps its
    name for its soft-delete retention (7 days in dev, 90 in prod; purge protection forbids purging it): set this
    for the one `pulumi up` that re-creates the stack within that window, then remove it."""

    def nat_mode(self, environment: str) -> NatMode:
        if self.nat is not None:
            return self.nat
        return NatMode.per_zone if environment == "prod" else NatMode.single

    def problems(self, ctx: Context) -> Iterator[Problem]:
        if self.existing_network is not None:
            yield from self.existing_network.problems(ctx)
            for key in ("cidr", "nat"):
                if key in self.model_fields_set:
                    yield Problem(key, getattr(self, key), "leave unset when existing_network is given (bring your own network or create one, not both)")
        (low, high, why), services = NETWORK_SIZES[ctx.cloud], SERVICE_RANGES[ctx.cloud]
        if not low <= self.cidr.prefixlen <= high:
            yield Problem("cidr", str(self.cidr), f"a network from /{low} to /{high} on {ctx.cloud} ({why})")
        if services is not None:
            s_low, s_high, s_why = services
            if not any(self.services_cidr.subnet_of(r) for r in PRIVATE_RANGES) or not s_low <= self.services_cidr.prefixlen <= s_high:
                yield Problem("services_cidr", str(self.services_cidr),
                              f"a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16) from /{s_low} to /{s_high} ({s_why})")
        ranges = {"cidr": self.cidr, "pods_cidr": self.pods_cidr, "services_cidr": self.services_cidr}
        names = list(ranges)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                if ranges[a].overlaps(ranges[b]):
                    yield Problem(b, str(ranges[b]), f"a range that does not overlap {a} ({ranges[a]})")
        if ctx.cloud == "azure" and self.existing_key_id is None:
            bad = [v for v in (key_vault_name(f"{ctx.prefix}-fence"), key_vault_name(f"{ctx.prefix}-etcd")) if not re.fullmatch(KEY_VAULT_NAME, v)]
            if bad:
                yield Problem("existing_key_id", None, f"a key of your own, or a prefix giving valid Key Vault names (got "
                                                       f"{', '.join(map(repr, bad))}: 3-24 letters, digits and single hyphens, ending "
                                                       "with a letter or digit)")
        if self.recover_key_vault and (ctx.cloud != "azure" or self.existing_key_id is not None):
            yield Problem("recover_key_vault", True, "false here: it recovers the Key Vault the Azure fence creates (not with existing_key_id)")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            yield Problem("log_retention_days", self.log_retention_days, "one of " + ", ".join(map(str, LOG_RETENTION_DAYS)))
        elif ctx.cloud in LOG_RETENTION_RANGE:
            low, high, what = LOG_RETENTION_RANGE[ctx.cloud]
            if not low <= self.log_retention_days <= high:
                yield Problem("log_retention_days", self.log_retention_days, f"{low} to {high} days on {ctx.cloud} ({what})")


def subnet_plan(cidr: IPv4Network, zones: int) -> tuple[list[str], list[str]]:
    """Split the network into per-zone large private subnets and small per-zone edge subnets.

    The network is cut in quarters: quarters 0-2 are private subnets (one per zone, room for many
    pods with VPC-native CNIs), quarter 3 is cut in four small edge subnets (AWS: public subnets for
    NAT and load balancers; Azure: private endpoints). Pure and deterministic.
    """
    if not 1 <= zones <= 3:
        raise ValueError(f"subnet_plan: zones must be 1 to 3, got {zones}")
    quarters = list(ipaddress.ip_network(cidr).subnets(prefixlen_diff=2))
    public = list(quarters[3].subnets(prefixlen_diff=2))
    return [str(q) for q in quarters[:zones]], [str(p) for p in public[:zones]]


# Azure Key Vault names: 3-24 letters, digits and hyphens, starting with a letter, ending with a letter or
# digit, no two hyphens in a row (Microsoft Learn, "Key Vault naming": vault name rules); global across Azure.
KEY_VAULT_NAME = r"[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]"


def key_vault_name(component: str) -> str:
    """The fence vault's name from its component name: '<component>-kv', cut to 24 without a trailing hyphen."""
    return f"{component}-kv"[:24].rstrip("-")
