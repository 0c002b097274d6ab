"""IAM policy documents shared by the AWS components (one place, so every policy is written alike)."""

from __future__ import annotations

import json
from typing import Any


def policy(*statements: dict[str, Any]) -> str:
    """A policy document (JSON) from its statements."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume(service: str, action: str | list[str] = "sts:AssumeRole") -> str:
    """Trust policy letting one AWS service assume the role."""
    return policy({"Effect": "Allow", "Principal": {"Service": service}, "Action": action})


def deny_insecure_transport(sid: str, action: str, resources: str | list[str]) -> dict[str, Any]:
    """Statement refusing any request not made over TLS."""
    return {"Sid": sid, "Effect": "Deny", "Principal": "*", "Action": action, "Resource": resources,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
