"""Reaching a farm cluster, the same on every cloud: the kubeconfig the program (and its users) use, the
check that whoever runs `pulumi up` is an admin, and stable resource-name parts for principals.

Each cloud supplies only what differs: the token command of its kubeconfig, how it recognises the caller.
"""

from __future__ import annotations

import hashlib
import json
import re

import pulumi


def exec_kubeconfig(name: pulumi.Input[str], server: pulumi.Input[str], ca: pulumi.Input[str], command: str,
                    args: pulumi.Input[list[str]] | None = None, provide_cluster_info: bool = False) -> pulumi.Output[str]:
    """A kubeconfig whose user gets short-lived tokens from `command` (the cloud's CLI or auth plugin): no
    long-lived credentials in state."""
    def render(a: list) -> str:
        user: dict = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": command}
        if a[3]:
            user["args"] = a[3]
        if provide_cluster_info:
            user["provideClusterInfo"] = True
        return json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": a[0],
            "clusters": [{"name": a[0], "cluster": {"server": a[1], "certificate-authority-data": a[2]}}],
            "contexts": [{"name": a[0], "context": {"cluster": a[0], "user": a[0]}}],
            "users": [{"name": a[0], "user": {"exec": user}}],
        })
    return pulumi.Output.all(name, server, ca, args or []).apply(render)


def refuse_deployer(caller: str, admins: list[str], what: str = "the identity") -> None:
    """The program installs the in-cluster stack as whoever runs `pulumi up`, and the cluster admits only the
    stack's admins: anyone else would be refused after the cluster is built, so they are refused in preview."""
    raise pulumi.RunError(
        f"dragonfarm:breeding_ground.admins: got {', '.join(admins)}; allowed: a list including {what} running "
        f"pulumi up ({caller}): the cluster admits only listed admins, and the program installs the in-cluster stack as that identity")


def principal_slug(principal: str) -> str:
    """A stable resource-name part for a principal (an IAM ARN, a Google member, an Entra `<type>:<id>`): its
    readable last part plus a short digest of the whole (readable parts may collide or share prefixes)."""
    name = re.sub(r"[^a-z0-9]+", "-", principal.rsplit("/", 1)[-1].lower()).strip("-")[:24]
    return f"{name}-{hashlib.sha256(principal.encode()).hexdigest()[:6]}"
