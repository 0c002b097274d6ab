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
    """Wait for a GKE operation on a pool; raise if it does not finish in time."""
    name = operation.get("name", "")
    location = pool.split("/clusters/")[0]
    deadline = time.monotonic() + timeout
    while operation.get("status") != "DONE":
        if time.monotonic() > deadline:
            raise TimeoutError(f"operation {name} on {pool} still {operation.get('status')}")
        time.sleep(5)
        operation = session.get(f"{CONTAINER}{location}/operations/{name}").json()


def call(session: AuthorizedSession, pool: str, verb: str, body: dict, deadline: float) -> None:
    """POST a node pool change, retrying while the cluster is busy with another operation (400
    FAILED_PRECONDITION: the autoscaler, an upgrade or this function's previous call), then wait for it."""
    delay = 5.0
    while True:
        response = session.post(f"{CONTAINER}{pool}:{verb}", json=body)
        if response.ok:
            wait(session, pool, response.json(), timeout=max(10.0, deadline - time.monotonic()))
            return
        if response.status_code != 400 or "FAILED_PRECONDITION" not in response.text or time.monotonic() + delay > deadline:
            response.raise_for_status()
        time.sleep(delay)
        delay = min(delay * 2, 60.0)


def stop_pool(session: AuthorizedSession, pool: str, deadline: float) -> None:
    """Autoscaling off, then zero nodes (the autoscaler would otherwise add nodes back for pending pods)."""
    call(session, pool, "setAutoscaling", {"autoscaling": {"enabled": False}}, deadline)
    call(session, pool, "setSize", {"nodeCount": 0}, deadline)


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
    # The function may run 540 s: leave a margin, and spread it over the pools.
    pools = json.loads(os.environ.get("NODE_POOLS", "[]"))
    start = time.monotonic()
    for i, pool in enumerate(pools):
        try:
            stop_pool(session, pool, deadline=start + 480 * (i + 1) / len(pools))
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
        # Raised, so the failure shows in the function's logs and error reporting; the next budget
        # notification (several a day) runs the stop again.
        raise RuntimeError("hard stop incomplete: " + "; ".join(failures))
