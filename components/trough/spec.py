"""Trough: object storage for datasets, checkpoints, models and logs, cloud-neutral inputs.

Each keyed entry is one bucket (S3 bucket, GCS bucket, Azure storage account + container):
versioned, encrypted with the fence's key, public access blocked, and lifecycle rules that follow
its purpose. Lifecycle rules never expire current objects unless the spec says so (only logs do by
default) and never move objects out of a storage class before its minimum storage duration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Iterator

from pydantic import Field

from components.schema import Context, Problem, Spec, ordered


class Purpose(str, Enum):
    datasets = "datasets"
    checkpoints = "checkpoints"
    models = "models"
    logs = "logs"


class Access(str, Enum):
    """What a workload may do with a trough's objects."""

    read = "read"
    read_write = "read-write"


# What a team's workloads or a dev box may do with each trough when the stack says nothing: read the
# data it trains on and the models it serves, write what it produces (checkpoints, logs).
DEFAULT_ACCESS: dict[Purpose, Access] = {
    Purpose.datasets: Access.read, Purpose.models: Access.read,
    Purpose.checkpoints: Access.read_write, Purpose.logs: Access.read_write,
}


def trough_access(explicit: dict[str, Access] | None, troughs: dict[str, "TroughSpec"]) -> dict[str, Access]:
    """The troughs a workload may use, keyed like the stack's troughs: the explicit map, or the defaults by purpose."""
    if explicit is not None:
        return dict(explicit)
    return {key: DEFAULT_ACCESS[spec.purpose] for key, spec in troughs.items()}


@dataclass(frozen=True)
class StorageClass:
    name: str
    """The cloud's own name for the class."""
    min_days: int
    """Minimum storage duration: leaving earlier is billed as if the object stayed."""
    earliest_day: int = 0
    """Earliest day after creation the cloud lets a lifecycle rule move an object into the class."""


# Tiers by cloud. "cool" is infrequent access, "cold" is archive-like but still readable in
# milliseconds to hours. Figures: the S3, Cloud Storage and Azure Blob Storage pricing pages.
TIERS: dict[str, dict[str, StorageClass]] = {
    "aws": {
        "hot": StorageClass("STANDARD", 0),
        "cool": StorageClass("STANDARD_IA", 30, earliest_day=30),
        "cold": StorageClass("GLACIER", 90),
    },
    "gcp": {
        "hot": StorageClass("STANDARD", 0),
        "cool": StorageClass("NEARLINE", 30),
        "cold": StorageClass("COLDLINE", 90),
    },
    "azure": {
        "hot": StorageClass("Hot", 0),
        "cool": StorageClass("Cool", 30),
        "cold": StorageClass("Cold", 90),
    },
}


class Lifecycle(Spec):
    cool_after_days: int | None = Field(default=None, ge=1)
    """Move current objects to the infrequent-access class this many days after creation."""
    cold_after_days: int | None = Field(default=None, ge=1)
    """Move current objects to the cold class this many days after creation."""
    expire_after_days: int | None = Field(default=None, ge=1)
    """Delete current objects this many days after creation (deletes data: off except for logs)."""
    noncurrent_expire_after_days: int | None = Field(default=None, ge=1)
    """Delete versions this many days after a newer version replaced them."""
    abort_incomplete_upload_days: int = Field(default=7, ge=1)
    """Abort multipart uploads still incomplete after this many days (they bill but are invisible)."""

    def problems(self, ctx: Context) -> Iterator[Problem]:
        tiers = TIERS[ctx.cloud]
        if self.cool_after_days is not None and self.cool_after_days < tiers["cool"].earliest_day:
            yield Problem("cool_after_days", self.cool_after_days,
                          f"at least {tiers['cool'].earliest_day} ({ctx.cloud} moves objects to {tiers['cool'].name} no earlier)")
        steps: list[tuple[str, int | None]] = [
            ("cool_after_days", self.cool_after_days),
            ("cold_after_days", self.cold_after_days),
            ("expire_after_days", self.expire_after_days),
        ]
        held = {"cool_after_days": tiers["cool"], "cold_after_days": tiers["cold"]}
        for earlier, early_day, later, late_day in ordered(steps):
            stay = held[earlier]
            if late_day < early_day + stay.min_days:
                yield Problem(later, late_day,
                              f"at least {early_day + stay.min_days} ({earlier} {early_day} + {stay.name} minimum storage duration {stay.min_days} days)")


# What each purpose gets when the stack says nothing. Datasets and checkpoints are re-read for a
# month, then rarely; models are served and kept; logs are kept a year then deleted.
PURPOSE_DEFAULTS: dict[Purpose, Lifecycle] = {
    Purpose.datasets: Lifecycle(cool_after_days=30, noncurrent_expire_after_days=30),
    Purpose.checkpoints: Lifecycle(cool_after_days=30, noncurrent_expire_after_days=14),
    Purpose.models: Lifecycle(noncurrent_expire_after_days=90),
    Purpose.logs: Lifecycle(cool_after_days=30, cold_after_days=90, expire_after_days=365, noncurrent_expire_after_days=7),
}


class TroughSpec(Spec):
    purpose: Purpose
    """What the bucket holds: datasets, checkpoints, models or logs (sets the lifecycle defaults)."""
    name: str | None = None
    """Bucket / storage account name. Default: derived from the stack prefix and the entry's key."""
    versioning: bool = True
    """Keep object versions so an overwrite or delete can be undone."""
    lifecycle: Lifecycle | None = None
    """Overrides of the purpose's lifecycle defaults; a key set to null switches that rule off."""
    existing_bucket: str | None = None
    """Use this existing bucket (storage account on Azure) instead of creating one; nothing is managed on it."""

    def effective_lifecycle(self) -> Lifecycle:
        base = PURPOSE_DEFAULTS[self.purpose]
        if self.lifecycle is None:
            return base
        return base.model_copy(update={k: getattr(self.lifecycle, k) for k in self.lifecycle.model_fields_set})

    def problems(self, ctx: Context, key: str) -> Iterator[Problem]:
        if self.existing_bucket is not None:
            for field in ("name", "lifecycle"):
                if field in self.model_fields_set:
                    yield Problem(field, getattr(self, field), "leave unset when existing_bucket is given (an existing bucket is used as it is)")
            return
        name = bucket_name(ctx.cloud, ctx.prefix, key, self.name)
        rule = name_rule(ctx.cloud, name)
        if rule is not None:
            yield Problem("name", name, rule)
        for problem in self.effective_lifecycle().problems(ctx):
            yield problem.under("lifecycle")


def bucket_name(cloud: str, prefix: str, key: str, override: str | None = None) -> str:
    """The deterministic bucket name: '<prefix>-<key>', or prefix+key squeezed on Azure."""
    if override:
        return override
    if cloud == "azure":
        return re.sub(r"[^a-z0-9]", "", f"{prefix}{key}".lower())
    return f"{prefix}-{key}".lower()


_AWS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_GCP_BUCKET = re.compile(r"^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$")
_AZURE_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_IP_SHAPED = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
# Amazon S3 User Guide, "General purpose bucket naming rules": prefixes and suffixes S3 reserves.
S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def name_rule(cloud: str, name: str) -> str | None:
    """None when the bucket name is valid on the cloud, else the rule it breaks.

    Dotted names are refused on both S3 (a dot breaks the TLS certificate of virtual-hosted requests, and
    the farm's buckets accept TLS only) and GCS (a dotted name needs a verified domain)."""
    if cloud == "aws":
        if not _AWS_BUCKET.match(name):
            return "an S3 bucket name: 3-63 lowercase letters, digits and hyphens, starting and ending with a letter or digit (no dots)"
        if name.startswith(S3_RESERVED_PREFIXES) or name.endswith(S3_RESERVED_SUFFIXES):
            return (f"an S3 bucket name not starting with {', '.join(S3_RESERVED_PREFIXES)} nor ending with "
                    f"{', '.join(S3_RESERVED_SUFFIXES)} (reserved by S3)")
    elif cloud == "gcp":
        # Cloud Storage "Bucket naming requirements": no 'goog' prefix, no 'google' or close misspellings.
        squeezed = name.replace("0", "o").replace("1", "l").replace("3", "e")
        if not _GCP_BUCKET.match(name) or _IP_SHAPED.match(name):
            return "a GCS bucket name: 3-63 lowercase letters, digits, hyphens and underscores, starting and ending with a letter or digit (no dots)"
        if name.startswith("goog") or "google" in squeezed or "g00gle" in name:
            return "a GCS bucket name that neither starts with 'goog' nor contains 'google' or a look-alike (reserved by Google)"
    elif cloud == "azure":
        if not _AZURE_ACCOUNT.match(name):
            return "an Azure storage account name: 3-24 lowercase letters and digits"
    return None
