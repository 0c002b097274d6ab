"""Pinned Helm charts of the in-cluster stack. One place to bump a version; a bump is a reviewed change.

Versions were current at the date below; check the chart's release notes before raising one.
"""

from __future__ import annotations

from dataclasses import dataclass

CHECKED = "2026-11-22"


@dataclass(frozen=True)
class Chart:
    chart: str
    version: str
    repo: str | None = None
    """Helm repository URL; None when `chart` is an OCI reference."""


KARPENTER = Chart("oci://public.ecr.aws/karpenter/karpenter", "1.8.1")
NVIDIA_DEVICE_PLUGIN = Chart("nvidia-device-plugin", "0.17.4", "https://nvidia.github.io/k8s-device-plugin")
DCGM_EXPORTER = Chart("dcgm-exporter", "4.6.0", "https://nvidia.github.io/dcgm-exporter/helm-charts")
KUEUE = Chart("oci://registry.k8s.io/kueue/charts/kueue", "0.14.4")
AWS_EFA_DEVICE_PLUGIN = Chart("aws-efa-k8s-device-plugin", "0.5.14", "https://aws.github.io/eks-charts")
