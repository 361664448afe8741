"""Queue mode's Terraform (`terraform/modules/*/queue.tf`), read offline with python-hcl2: off by default, and
when on, the queue, its dead letters, the drain and the least IAM each needs."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.test_terraform import MODULES, blocks, first, resources

AWS = MODULES["aws"]
GCP = MODULES["gcp"]


def queue_resources(module: Any) -> dict[tuple[str, str], Any]:
    queue_tf = {key for key in resources(module)} - {key for key in resources(module, skip=("queue.tf",))}
    return {key: body for key, body in resources(module).items() if key in queue_tf}


def test_delivery_defaults_to_direct_and_every_queue_resource_exists_only_in_queue_mode() -> None:
    for module in (AWS, GCP):
        assert blocks(module, "variable")["delivery"]["default"] == "direct"
        built = queue_resources(module)
        assert built
        assert {body.get("count") for body in built.values()} == {"${local.queue_mode ? 1 : 0}"}


def test_aws_queue_outlasts_the_drain_and_dead_letters_after_enough_receives_for_an_hour() -> None:
    queue = resources(AWS)[("aws_sqs_queue", "events")]
    dead = resources(AWS)[("aws_sqs_queue", "dead_letters")]
    queue_tf = (AWS / "queue.tf").read_text()

    assert queue["visibility_timeout_seconds"] == "${6 * var.drain_timeout}"
    assert "aws_sqs_queue.dead_letters[0].arn" in queue["redrive_policy"]
    assert "maxReceiveCount     = local.queue_max_receives" in queue_tf
    assert "max(5, ceil(3600 / var.drain_backoff_seconds) + 1)" in queue_tf
    assert dead["message_retention_seconds"] == 1209600


def test_aws_drain_is_fed_by_the_mapping_with_partial_batch_failures() -> None:
    mapping = resources(AWS)[("aws_lambda_event_source_mapping", "drain")]
    drain = resources(AWS)[("aws_lambda_function", "drain")]

    assert drain["handler"] == "main.lambda_drain"
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["batch_size"] == "${var.queue_batch_size}"
    assert mapping["maximum_batching_window_in_seconds"] == "${var.queue_batching_window_seconds}"
    assert first(mapping["scaling_config"])["maximum_concurrency"] == "${var.queue_maximum_concurrency}"


def test_aws_queue_permissions_name_only_the_queue_and_the_drain_log_group() -> None:
    policy = resources(AWS, "data")[("aws_iam_policy_document", "queue")]
    statements = policy["statement"]

    assert [s["resources"] for s in statements] == [
        ["${aws_sqs_queue.events[0].arn}"],
        ["${aws_cloudwatch_log_group.drain[0].arn}:*"],
    ]
    assert "*" not in json.dumps([s["actions"] for s in statements])


def test_gcp_subscription_dead_letters_into_a_kept_topic() -> None:
    subscription = resources(GCP)[("google_pubsub_subscription", "drain")]
    kept = resources(GCP)[("google_pubsub_subscription", "dead_letters")]
    policy = first(subscription["dead_letter_policy"])

    assert policy["dead_letter_topic"] == "${google_pubsub_topic.dead_letters[0].id}"
    assert policy["max_delivery_attempts"] == "${local.queue_max_attempts}"
    assert kept["topic"] == "${google_pubsub_topic.dead_letters[0].id}"


def test_gcp_drain_is_private_and_called_by_the_scheduler_with_an_oidc_token() -> None:
    drain = resources(GCP)[("google_cloudfunctions2_function", "drain")]
    invoker = resources(GCP)[("google_cloud_run_service_iam_member", "scheduler")]
    job = resources(GCP)[("google_cloud_scheduler_job", "drain")]
    target = first(job["http_target"])

    assert first(drain["build_config"])["entry_point"] == "drain"
    # Private by IAM: no allUsers invoker, only the scheduler's own account.
    assert [key for key in resources(GCP) if key[0] == "google_cloud_run_service_iam_member"] == [
        ("google_cloud_run_service_iam_member", "public"),
        ("google_cloud_run_service_iam_member", "scheduler"),
    ]
    assert invoker["member"] == "serviceAccount:${google_service_account.scheduler[0].email}"
    assert job["schedule"] == "* * * * *"
    assert target["http_method"] == "POST"
    assert first(target["oidc_token"])["service_account_email"] == "${google_service_account.scheduler[0].email}"
