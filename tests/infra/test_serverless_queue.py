"""Queue mode through the Serverless routes (deploy/queue.js): `serverless package` for AWS gives a stack that
passes cfn-lint with the queue, its dead letters and the drain; `serverless deploy` for GCP runs the gcloud steps
(stubbed gcloud records them) for the topic, subscriptions, private drain and scheduler job."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from tests.infra.test_serverless import (
    CFN_LINT,
    AwsPackage,
    GcpRun,
    base_env,
    flags,
    gcloud_run,
    node_modules,  # noqa: F401 - the fixture that skips when node_modules is absent
    require_tool,
    serverless,
    service_copy,
)


@pytest.fixture(scope="module")
def aws_queue(tmp_path_factory: pytest.TempPathFactory) -> AwsPackage:
    service = service_copy(tmp_path_factory.mktemp("aws-queue") / "service")
    env = base_env(FS2SPLIT_DELIVERY="queue", FS2SPLIT_DRAIN_BACKOFF_SECONDS="120")
    serverless(service, "package", "--config", "serverless.aws.yml", env=env)
    directory = service / ".serverless"
    return AwsPackage(directory, json.loads((directory / "cloudformation-template-update-stack.json").read_text()))


def resource(package: AwsPackage, name: str) -> dict[str, Any]:
    return package.template["Resources"][name]["Properties"]  # type: ignore[no-any-return]


def test_aws_queue_stack_passes_cfn_lint(aws_queue: AwsPackage) -> None:
    require_tool(CFN_LINT, "install requirements-infra.txt into .venv-infra (./dev test does)")
    template = aws_queue.directory / "cloudformation-template-update-stack.json"

    result = subprocess.run(
        [str(CFN_LINT), "--format", "parseable", str(template)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert [line for line in result.stdout.splitlines() if re.search(r":E\d{4}:", line)] == [], result.stdout


def test_aws_queue_outlasts_the_drain_and_an_hour_of_retries_before_dead_letters(aws_queue: AwsPackage) -> None:
    queue = resource(aws_queue, "Fs2splitEventsQueue")
    drain = resource(aws_queue, "DrainLambdaFunction")

    assert queue["VisibilityTimeout"] >= 6 * drain["Timeout"]
    # 120 s backoff: 31 receives span an hour.
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 31
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["Fs2splitDeadLetters", "Arn"]}
    assert resource(aws_queue, "Fs2splitDeadLetters")["MessageRetentionPeriod"] == 1209600


def test_aws_drain_reports_partial_batch_failures_and_both_functions_know_the_queue(aws_queue: AwsPackage) -> None:
    (mapping,) = aws_queue.resources("AWS::Lambda::EventSourceMapping").values()
    functions = {name: body["Properties"] for name, body in aws_queue.resources("AWS::Lambda::Function").items()}

    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert functions["DrainLambdaFunction"]["Handler"] == "main.lambda_drain"
    for function in functions.values():
        assert function["Environment"]["Variables"]["FS2SPLIT_DELIVERY"] == "queue"
        assert function["Environment"]["Variables"]["FS2SPLIT_QUEUE_URL"] == {"Ref": "Fs2splitEventsQueue"}


def test_aws_role_uses_only_this_queue(aws_queue: AwsPackage) -> None:
    role = aws_queue.one("AWS::IAM::Role")
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    sqs = [s for s in statements if any(a.startswith("sqs:") for a in s["Action"])]

    # Ours, and the one osls adds for the sqs event: both name this queue only.
    assert sqs
    assert all(s["Resource"] == [{"Fn::GetAtt": ["Fs2splitEventsQueue", "Arn"]}] for s in sqs)
    assert "sqs:*" not in json.dumps(sqs)


@pytest.fixture(scope="module")
def gcp_queue(tmp_path_factory: pytest.TempPathFactory) -> GcpRun:
    return gcloud_run(
        tmp_path_factory.mktemp("gcp-queue"),
        "deploy",
        FS2SPLIT_DELIVERY="queue",
        FS2SPLIT_GCP_SCHEDULER_ACCOUNT="drain-cron@demo-project.iam.gserviceaccount.com",
    )


def calls_starting(run: GcpRun, *prefix: str) -> list[list[str]]:
    return [call for call in run.calls if call[: len(prefix)] == list(prefix)]


def test_gcp_queue_deploy_makes_a_pull_subscription_that_dead_letters_into_a_kept_topic(gcp_queue: GcpRun) -> None:
    subscriptions = {c[3]: flags(c) for c in calls_starting(gcp_queue, "pubsub", "subscriptions", "create")}
    drain = subscriptions["projects/demo-project/subscriptions/fs2split-drain"]

    assert [c[3] for c in calls_starting(gcp_queue, "pubsub", "topics", "create")] == [
        "projects/demo-project/topics/fs2split-events",
        "projects/demo-project/topics/fs2split-dead-letters",
    ]
    assert drain["dead-letter-topic"] == "projects/demo-project/topics/fs2split-dead-letters"
    assert drain["max-delivery-attempts"] == "61"
    assert subscriptions["projects/demo-project/subscriptions/fs2split-dead-letters"]["topic"] == (
        "projects/demo-project/topics/fs2split-dead-letters"
    )


def test_gcp_queue_drain_is_private_and_scheduled_every_minute_with_an_oidc_token(gcp_queue: GcpRun) -> None:
    deploys = {c[2]: flags(c) for c in calls_starting(gcp_queue, "functions", "deploy")}
    (job,) = calls_starting(gcp_queue, "scheduler", "jobs", "create", "http")
    (invoker,) = calls_starting(gcp_queue, "run", "services", "add-iam-policy-binding")

    assert deploys["fs2split-dev-fs2split"].get("allow-unauthenticated") is True
    assert deploys["fs2split-dev-drain"].get("no-allow-unauthenticated") is True
    assert deploys["fs2split-dev-drain"]["entry-point"] == "drain"
    assert flags(job)["schedule"] == "* * * * *"
    assert flags(job)["http-method"] == "POST"
    assert flags(job)["oidc-service-account-email"] == "drain-cron@demo-project.iam.gserviceaccount.com"
    assert flags(invoker)["member"] == "serviceAccount:drain-cron@demo-project.iam.gserviceaccount.com"


def test_aws_queue_with_shared_dedup_gives_the_drain_the_same_table(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The drain dedups (issue 17) through the shared store (issue 16): both resource fragments in one stack.
    service = service_copy(tmp_path_factory.mktemp("aws-queue-dedup") / "service")
    env = base_env(FS2SPLIT_DELIVERY="queue", FS2SPLIT_DEDUP_STORE="dynamodb", FS2SPLIT_DEDUP_TABLE="fs2split-dedup")
    serverless(service, "package", "--config", "serverless.aws.yml", env=env)
    directory = service / ".serverless"
    package = AwsPackage(directory, json.loads((directory / "cloudformation-template-update-stack.json").read_text()))
    functions = {name: body["Properties"] for name, body in package.resources("AWS::Lambda::Function").items()}

    assert package.resources("AWS::SQS::Queue")
    assert package.resources("AWS::DynamoDB::Table")
    assert functions["DrainLambdaFunction"]["Environment"]["Variables"]["FS2SPLIT_DEDUP_STORE"] == "dynamodb"
    assert functions["DrainLambdaFunction"]["Environment"]["Variables"]["FS2SPLIT_DEDUP_TABLE"] == "fs2split-dedup"
