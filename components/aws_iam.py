"""IAM policy documents shared by the AWS components (one place, so every policy is written alike)."""

from __future__ import annotations

import json
from typing import Any


def policy(*statements: dict[str, Any]) -> str:
    """A policy document (JSON) from its statements."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume(service: str, action: str | list[str] = "sts:AssumeRole", account: str | None = None) -> str:
    """Trust policy letting one AWS service assume the role; with `account`, only on behalf of that account
    (aws:SourceAccount: the IAM User Guide's cross-service confused deputy prevention)."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": action}
    if account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account}}
    return policy(statement)


def deny_insecure_transport(sid: str, action: str, resources: str | list[str]) -> dict[str, Any]:
    """Statement refusing any request not made over TLS."""
    return {"Sid": sid, "Effect": "Deny", "Principal": "*", "Action": action, "Resource": resources,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]
WRITE_ACTIONS = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]


def trough_policy(grants: list[tuple[str, str]], key_arn: str, region: str) -> str:
    """Least privilege on some troughs: list and read each bucket, write only those granted read-write,
    and use the farm key only through S3 for those buckets (the encryption context is the bucket ARN
    with S3 Bucket Keys, the object ARN without: both are allowed, no other bucket's).

    `grants` is [(bucket ARN, "read" | "read-write")].
    """
    grants = sorted(grants)  # the same policy whatever order the stack lists its troughs in
    arns = [arn for arn, _ in grants]
    writable = [arn for arn, access in grants if access == "read-write"]
    statements: list[dict[str, Any]] = [
        {"Sid": "List", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": arns},
        {"Sid": "Read", "Effect": "Allow", "Action": READ_ACTIONS, "Resource": [f"{arn}/*" for arn in arns]},
    ]
    if writable:
        statements.append({"Sid": "Write", "Effect": "Allow", "Action": WRITE_ACTIONS, "Resource": [f"{arn}/*" for arn in writable]})
    statements.append({
        "Sid": "FarmKeyThroughS3", "Effect": "Allow",
        "Action": ["kms:Decrypt"] + (["kms:GenerateDataKey"] if writable else []), "Resource": key_arn,
        "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                      "ArnLike": {"kms:EncryptionContext:aws:s3:arn": arns + [f"{arn}/*" for arn in arns]}}})
    return policy(*statements)
