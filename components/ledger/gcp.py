"""GcpLedger: a monthly Cloud Billing budget on the farm's project, with alerts.

Threshold rules on current spend (50/80/100 %) and forecasted spend (100 %) go to e-mail
notification channels and to a Pub/Sub topic, where a function can act on them (budgets alone stop
nothing). GCP raises cost anomalies by itself in the Billing console; there is no resource to create.

Hard stop (`hard_stop: true`, off by default): a Cloud Run function (source in hard_stop_gcp/) on the
budget's topic that, once actual spend reaches the budget, turns autoscaling off on every GPU node pool
of the farm, sets them to zero nodes and stops the dev boxes. It never disables the project's billing
(Google's own sample does; that stops every service and may delete resources).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import pulumi
from pulumi_gcp import billing, cloudfunctionsv2, cloudrunv2, monitoring, organizations, projects, pubsub, serviceaccount, storage

from components.base import FarmComponent, token
from components.ledger.spec import LedgerSpec

# The service account Cloud Billing publishes budget notifications with.
BUDGET_PUBLISHER = "serviceAccount:billing-budget-alert@system.gserviceaccount.com"
HARD_STOP_SOURCE = Path(__file__).with_name("hard_stop_gcp")
# What deploying and running a Cloud Run function (2nd gen Cloud Functions) needs on (Cloud Run functions
# docs, "Deploy a Cloud Run function": enable these APIs).
HARD_STOP_APIS = ("cloudfunctions.googleapis.com", "cloudbuild.googleapis.com", "run.googleapis.com", "eventarc.googleapis.com",
                  "artifactregistry.googleapis.com")
# GKE's predefined role that may change node pools (container.clusters.update); none narrower exists, and a
# custom role's id stays reserved for weeks after a destroy (a re-created dev stack could not make it again).
POOL_ADMIN_ROLE = "roles/container.clusterAdmin"
# Cloud Build runs the function's build as this account, which needs the builder role (Cloud Run functions
# docs, "Configure a custom build service account").
BUILDER_ROLE = "roles/cloudbuild.builds.builder"


def source_files(folder: Path = HARD_STOP_SOURCE) -> list[Path]:
    """What the function is built from: its Python modules and requirements.txt."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".py", ".txt") and p.name != "__init__.py")


def source_digest(folder: Path = HARD_STOP_SOURCE) -> str:
    """A digest of the function's source: a changed source is a new object, so the function redeploys."""
    h = hashlib.sha256()
    for path in source_files(folder):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:12]


def threshold_rules(spec: LedgerSpec) -> list[billing.BudgetThresholdRuleArgsDict]:
    rules: list[billing.BudgetThresholdRuleArgsDict] = []
    for basis, thresholds in (("CURRENT_SPEND", spec.actual_thresholds), ("FORECASTED_SPEND", spec.forecast_thresholds)):
        for t in thresholds:
            rule: billing.BudgetThresholdRuleArgsDict = {"threshold_percent": t / 100, "spend_basis": basis}
            rules.append(rule)
    return rules


class GcpLedger(FarmComponent):
    TOKEN = token("GcpLedger")

    topic_id: pulumi.Output[str]

    def __init__(self, name: str, spec: LedgerSpec, *, farm: str, project: str, region: str = "",
                 billing_provider: pulumi.ProviderResource | None = None,
                 node_pools: Sequence[pulumi.Input[str]] | None = None, instances: list[tuple[str, str]] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`billing_provider`: the provider the Budget is created through (one that bills its API calls to a
        quota project, as the Budgets API needs with user credentials). `node_pools`: GPU node pool resource
        names (projects/P/locations/L/clusters/C/nodePools/N) and `instances` (zone, instance name) of dev
        boxes: what the hard stop stops."""
        super().__init__(name, opts)
        assert spec.billing_account is not None  # guaranteed by LedgerSpec.problems on gcp
        channels = [monitoring.NotificationChannel(f"{name}-email-{email}", project=project, type="email",
                                                   display_name=f"{farm} budget: {email}", labels={"email_address": email},
                                                   opts=self.child())
                    for email in spec.alert_emails]
        topic = pubsub.Topic(f"{name}-alerts", name=f"{farm}-budget-alerts", project=project, opts=self.child())
        self.topic_id = topic.id
        pubsub.TopicIAMMember(f"{name}-alerts-publisher", topic=topic.name, project=project, role="roles/pubsub.publisher",
                              member=BUDGET_PUBLISHER, opts=self.child())
        number = organizations.get_project_output(project_id=project, opts=self.invoke()).number
        billing.Budget(
            f"{name}-monthly", billing_account=spec.billing_account, display_name=f"{farm}-monthly",
            amount={"specified_amount": {"currency_code": spec.currency, "units": f"{int(spec.monthly_budget)}"}},
            # The whole project: a label filter would AND with it and drop unlabelled spend (Cloud NAT, logging,
            # egress), under-reporting. A farm is meant to have its project.
            budget_filter={"projects": [number.apply(lambda n: f"projects/{n}")], "calendar_period": "MONTH"},
            threshold_rules=threshold_rules(spec),
            all_updates_rule={"monitoring_notification_channels": [c.id for c in channels], "pubsub_topic": topic.id},
            opts=self.child(provider=billing_provider) if billing_provider is not None else self.child())
        if spec.hard_stop:
            self._hard_stop(name, farm, project, region, topic, node_pools or [], instances or [])
        self.finish({"topic_id": self.topic_id})

    def _hard_stop(self, name: str, farm: str, project: str, region: str, topic: pubsub.Topic, node_pools: Sequence[pulumi.Input[str]],
                   instances: list[tuple[str, str]]) -> None:
        apis = [projects.Service(f"{name}-api-{api.split('.')[0]}", project=project, service=api, disable_on_destroy=False,
                                 opts=self.child()) for api in HARD_STOP_APIS]
        after = self.child(depends_on=apis)
        runner = serviceaccount.Account(f"{name}-hard-stop", account_id=f"hard-stop-{hashlib.sha256(farm.encode()).hexdigest()[:8]}",
                                        project=project, display_name=f"{farm} budget hard stop", opts=self.child())
        builder = serviceaccount.Account(f"{name}-hard-stop-build", account_id=f"hard-stop-build-{hashlib.sha256(farm.encode()).hexdigest()[:8]}",
                                         project=project, display_name=f"{farm} budget hard stop: build", opts=self.child())
        grants: list[pulumi.Resource] = [projects.IAMMember(f"{name}-hard-stop-pools", project=project, role=POOL_ADMIN_ROLE, member=runner.member, opts=self.child()),
                  projects.IAMMember(f"{name}-hard-stop-build", project=project, role=BUILDER_ROLE, member=builder.member, opts=self.child())]
        # Stopping the dev boxes: a project grant conditioned on each box's name (IAM conditions on resource.name),
        # not an instance-level binding, which a replaced instance would silently lose.
        for zone, instance in instances:
            grants.append(projects.IAMMember(
                f"{name}-hard-stop-{instance}", project=project, role="roles/compute.instanceAdmin.v1", member=runner.member,
                condition={"title": f"only {instance}", "expression": f'resource.name == "projects/{project}/zones/{zone}/instances/{instance}"'},
                opts=self.child()))
        # Service agents the trigger needs (Eventarc "Roles and permissions for Cloud Run functions targets"): Eventarc's
        # own, made now rather than lazily (the first deploy otherwise fails while it propagates), with its role; and
        # Pub/Sub's, which mints the push token as the runner (needed on projects from before April 2021).
        number = organizations.get_project_output(project_id=project, opts=self.invoke()).number
        eventarc = projects.ServiceIdentity(f"{name}-eventarc-agent", project=project, service="eventarc.googleapis.com", opts=after)
        grants.append(projects.IAMMember(f"{name}-eventarc-agent", project=project, role="roles/eventarc.serviceAgent",
                                         member=eventarc.member, opts=self.child()))
        grants.append(serviceaccount.IAMMember(
            f"{name}-hard-stop-pubsub-token", service_account_id=runner.name, role="roles/iam.serviceAccountTokenCreator",
            member=number.apply(lambda n: f"serviceAccount:service-{n}@gcp-sa-pubsub.iam.gserviceaccount.com"), opts=self.child()))
        bucket = storage.Bucket(f"{name}-hard-stop-source", name=f"{farm}-hard-stop-{hashlib.sha256(project.encode()).hexdigest()[:8]}",
                                project=project, location=region.upper(), uniform_bucket_level_access=True,
                                public_access_prevention="enforced", force_destroy=True,
                                lifecycle_rules=[{"action": {"type": "Delete"}, "condition": {"num_newer_versions": 1}}], opts=after)
        archive = pulumi.AssetArchive({path.name: pulumi.FileAsset(str(path)) for path in source_files()})
        source = storage.BucketObject(f"{name}-hard-stop-source", bucket=bucket.name, name=f"hard-stop-{source_digest()}.zip",
                                      source=archive, opts=self.child())
        paths = json.dumps([f"projects/{project}/zones/{zone}/instances/{instance}" for zone, instance in instances])
        function = cloudfunctionsv2.Function(
            f"{name}-hard-stop", name=f"{farm}-hard-stop", project=project, location=region,
            description="dragonfarm hard stop: at 100 % actual spend, GPU node pools to zero and dev boxes stopped",
            build_config={"runtime": "python312", "entry_point": "hard_stop", "service_account": builder.id,
                          "source": {"storage_source": {"bucket": bucket.name, "object": source.name}}},
            service_config={"max_instance_count": 1, "available_memory": "256M", "timeout_seconds": 540,
                            "service_account_email": runner.email, "ingress_settings": "ALLOW_INTERNAL_ONLY",
                            "environment_variables": {"NODE_POOLS": pulumi.Output.all(*node_pools).apply(json.dumps), "INSTANCES": paths}},
            event_trigger={"event_type": "google.cloud.pubsub.topic.v1.messagePublished", "pubsub_topic": topic.id,
                           "trigger_region": region, "retry_policy": "RETRY_POLICY_DO_NOT_RETRY", "service_account_email": runner.email},
            opts=self.child(depends_on=[*apis, *grants]))
        # The trigger delivers through the function's Cloud Run service as the runner account.
        cloudrunv2.ServiceIamMember(f"{name}-hard-stop-invoker", project=project, location=region, name=function.name,
                                    role="roles/run.invoker", member=runner.member, opts=self.child())
