"""IAM policy documents shared by the AWS components (one place, so every role is written alike)."""

from __future__ import annotations

import json
from typing import Any


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume(service: str, action: str | list[str] = "sts:AssumeRole") -> str:
    """Trust policy letting one AWS service assume the role."""
    return policy({"Effect": "Allow", "Principal": {"Service": service}, "Action": action})
