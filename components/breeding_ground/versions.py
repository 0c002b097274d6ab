"""Kubernetes versions each cloud supports, and the add-on versions pinned per Kubernetes version.

Data, not code: `kubernetes_versions.csv` (one row per cloud and minor version: release date, end of
standard support, end of extended support, the cloud's default) and `addon_versions.csv` (one row per
cloud, Kubernetes version and add-on), each row with its public source and the date it was checked.

A version is accepted at load only inside its standard support window on the day the stack is loaded:
EKS charges 6x the control-plane fee in extended support and upgrades a cluster whose support policy
is STANDARD on its own once standard support ends, so a stale pin fails before anything is built.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from components.breeding_ground import charts

HERE = Path(__file__).parent


@dataclass(frozen=True)
class KubernetesVersion:
    cloud: str
    version: str
    released: date
    end_of_standard: date
    end_of_extended: date | None
    default: bool


def _date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


@lru_cache(maxsize=1)
def all_versions() -> tuple[KubernetesVersion, ...]:
    with (HERE / "kubernetes_versions.csv").open(newline="") as handle:
        rows = []
        for row in csv.DictReader(handle):
            released, standard = _date(row["released"]), _date(row["end_of_standard_support"])
            assert released is not None and standard is not None, row
            rows.append(KubernetesVersion(row["cloud"], row["version"], released, standard,
                                          _date(row["end_of_extended_support"]), row["default"] == "yes"))
        return tuple(rows)


@lru_cache(maxsize=1)
def _addons() -> dict[tuple[str, str], dict[str, str]]:
    out: dict[tuple[str, str], dict[str, str]] = {}
    with (HERE / "addon_versions.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            out.setdefault((row["cloud"], row["kubernetes_version"]), {})[row["addon"]] = row["version"]
    return out


def _minor(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def supported(cloud: str, today: date | None = None) -> list[KubernetesVersion]:
    """Versions in standard support on `today` (default: the real today), oldest first."""
    today = today or date.today()
    return sorted((v for v in all_versions() if v.cloud == cloud and v.released <= today < v.end_of_standard),
                  key=lambda v: _minor(v.version))


def default(cloud: str) -> str:
    (row,) = [v for v in all_versions() if v.cloud == cloud and v.default]
    return row.version


def addons(cloud: str, version: str) -> dict[str, str]:
    """Pinned add-on versions for a Kubernetes version ({} when the cloud manages them itself)."""
    return dict(_addons().get((cloud, version), {}))


def problem(cloud: str, version: str, today: date | None = None) -> str | None:
    """None when `version` may be pinned on `cloud` today; otherwise what is allowed, and why not this one."""
    today = today or date.today()
    window = supported(cloud, today)
    allowed = f"a version in {cloud} standard support today ({today}): {', '.join(v.version for v in window) or 'none known'}"
    known = {v.version: v for v in all_versions() if v.cloud == cloud}
    row = known.get(version)
    if row is None:
        return f"{allowed} (not a version {cloud} offers)"
    if today < row.released:
        return f"{allowed} ({version} is not released on {cloud} until {row.released})"
    if today >= row.end_of_standard:
        return f"{allowed} ({version} left standard support on {row.end_of_standard}; extended support costs more)"
    behind = charts.unsupported(cloud, version)
    if behind:
        return f"{allowed}; the pinned charts do not support {version} yet: {', '.join(behind)} (charts.py)"
    missing = sorted(required_addons(cloud) - set(addons(cloud, version)))
    if missing:
        return (f"{allowed}; {version} has no versions pinned in addon_versions.csv for {', '.join(missing)} yet "
                f"(add its rows, with a source, to use it)")
    return None


def required_addons(cloud: str) -> set[str]:
    """Every add-on (and node image, `node-ami`) pinned for any version of `cloud`: each version needs them all."""
    return {addon for (c, _), pinned in _addons().items() if c == cloud for addon in pinned}


@lru_cache(maxsize=1)
def _features() -> dict[tuple[str, str], tuple[str, str]]:
    with (HERE / "features.csv").open(newline="") as handle:
        return {(row["cloud"], row["feature"]): (row["first_minor"], row["needed_for"]) for row in csv.DictReader(handle)}


def feature_problem(cloud: str, feature: str, version: str) -> str | None:
    """None when Kubernetes `version` on `cloud` has `feature` (features.csv; a cloud without a row for it
    needs no minimum); otherwise what is allowed."""
    row = _features().get((cloud, feature))
    if row is None or _minor(version) >= _minor(row[0]):
        return None
    return f"{row[0]} or newer on {cloud}: {row[1]} need it"
