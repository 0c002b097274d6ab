"""dragonfarm hard stop (GCP): when the farm's budget reports actual spend at or over the budget, scale
every GPU node pool of the farm to zero and stop its dev boxes. It never touches the project's billing.

Triggered by every Cloud Billing budget notification on the budget's Pub/Sub topic (several a day; the
message's data is JSON with costAmount and budgetAmount: Cloud Billing docs, "Programmatic budget
notifications", notification format). Repeated runs are harmless: a pool at zero stays there.

Configuration (environment, set by the farm): NODE_POOLS, a JSON list of node pool resource names
(projects/P/locations/L/clusters/C/nodePools/N); INSTANCES, a JSON list of instance paths
(projects/P/zones/Z/instances/I). Undo: `pulumi up --refresh` puts autoscaling back as the stack says
(the budget keeps notifying, so raise the budget or wait for the next month first).
"""

from __future__ import annotations

import base64
import json
import os
import time

import functions_framework
import google.auth
from budget import over_budget
from google.auth.transport.requests import AuthorizedSession

CONTAINER = "https://container.googleapis.com/v1/"
COMPUTE = "https://compute.googleapis.com/compute/v1/"


def wait(session: AuthorizedSession, pool: str, operation: dict, timeout: float = 120) -> None:
    """Wait for a GKE operation: a node pool takes one change at a time."""
    name = operation.get("name", "")
    location = pool.split("/clusters/")[0]
    deadline = time.monotonic() + timeout
    while operation.get("status") != "DONE" and time.monotonic() < deadline:
        time.sleep(5)
        operation = session.get(f"{CONTAINER}{location}/operations/{name}").json()


def stop_pool(session: AuthorizedSession, pool: str) -> None:
    """Autoscaling off, then zero nodes (the autoscaler would otherwise add nodes back for pending pods)."""
    response = session.post(f"{CONTAINER}{pool}:setAutoscaling", json={"autoscaling": {"enabled": False}})
    response.raise_for_status()
    wait(session, pool, response.json())
    response = session.post(f"{CONTAINER}{pool}:setSize", json={"nodeCount": 0})
    response.raise_for_status()
    wait(session, pool, response.json(), timeout=60)  # the next pool's call may need the cluster free


def stop_instance(session: AuthorizedSession, instance: str) -> None:
    session.post(f"{COMPUTE}{instance}/stop").raise_for_status()


@functions_framework.cloud_event
def hard_stop(event) -> None:  # noqa: ANN001 - a CloudEvent
    data = json.loads(base64.b64decode(event.data["message"]["data"]).decode())
    if not over_budget(data):
        print(f"under budget ({data.get('costAmount')} of {data.get('budgetAmount')}): nothing to do")
        return
    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    session = AuthorizedSession(credentials)
    failures = []
    for pool in json.loads(os.environ.get("NODE_POOLS", "[]")):
        try:
            stop_pool(session, pool)
            print(f"scaled to zero: {pool}")
        except Exception as exc:  # noqa: BLE001 - stop what can be stopped, report the rest
            failures.append(f"{pool}: {exc}")
    for instance in json.loads(os.environ.get("INSTANCES", "[]")):
        try:
            stop_instance(session, instance)
            print(f"stopped: {instance}")
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{instance}: {exc}")
    if failures:
        raise RuntimeError("hard stop incomplete: " + "; ".join(failures))
