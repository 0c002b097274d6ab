"""Pinned Helm charts of the in-cluster stack. One place to bump a version; a bump is a reviewed change.

Versions were current at the date below; check the chart's release notes before raising one.
"""

from __future__ import annotations

from dataclasses import dataclass

CHECKED = "2026-12-04"


@dataclass(frozen=True)
class Chart:
    chart: str
    version: str
    repo: str | None = None
    """Helm repository URL; None when `chart` is an OCI reference."""
    kubernetes: tuple[str, str] | None = None
    """Oldest and newest Kubernetes minor version the release supports, where its project publishes them."""
    clouds: tuple[str, ...] = ("aws", "gcp", "azure")
    """Clouds whose breeding ground installs it."""


def unsupported(cloud: str, version: str) -> list[str]:
    """`name version (supports a-b)` of each chart installed on `cloud` that does not support Kubernetes `version`."""
    def minor(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split("."))
    return [f"{c.chart.rsplit('/', 1)[-1]} {c.version} (supports {c.kubernetes[0]}-{c.kubernetes[1]})"
            for c in ALL if cloud in c.clouds and c.kubernetes is not None
            and not minor(c.kubernetes[0]) <= minor(version) <= minor(c.kubernetes[1])]


# Karpenter 1.8.x supports Kubernetes up to 1.34 only; 1.13.x and 1.14.x support 1.26-1.36 (compatibility
# matrix: aws/karpenter-provider-aws hack/docs/compatibilitymatrix_gen/compatibility.yaml). The chart is
# published from tag v1.14.1 (2026-08-20); its repository Chart.yaml carries the previous version until release.
KARPENTER = Chart("oci://public.ecr.aws/karpenter/karpenter", "1.14.1", kubernetes=("1.26", "1.36"), clouds=("aws",))
# GKE runs its own NVIDIA device plugin and (managed DCGM metrics) DCGM exporter: not installed there.
NVIDIA_DEVICE_PLUGIN = Chart("nvidia-device-plugin", "0.17.4", "https://nvidia.github.io/k8s-device-plugin", clouds=("aws", "azure"))
DCGM_EXPORTER = Chart("dcgm-exporter", "4.6.0", "https://nvidia.github.io/dcgm-exporter/helm-charts", clouds=("aws", "azure"))
KUEUE = Chart("oci://registry.k8s.io/kueue/charts/kueue", "0.14.4")
AWS_EFA_DEVICE_PLUGIN = Chart("aws-efa-k8s-device-plugin", "0.5.14", "https://aws.github.io/eks-charts", clouds=("aws",))
ALL = (KARPENTER, NVIDIA_DEVICE_PLUGIN, DCGM_EXPORTER, KUEUE, AWS_EFA_DEVICE_PLUGIN)
