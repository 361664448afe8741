"""The monitoring each Terraform module creates (monitoring.tf), read through python-hcl2: every dashboard
panel plots a metric the code emits (or the queue's own metric), the log-based metrics read fields the code
writes, and the alarms the operator relies on exist with their thresholds and notification targets."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fs2split import metrics
from fs2split.app import handle
from fs2split.http_types import Request
from fs2split.outcome import Reason
from tests.conftest import event_bytes
from tests.infra.test_terraform import MODULES, blocks, first, parse, resources

AWS, GCP = MODULES["aws"], MODULES["gcp"]
# What the code's log lines carry as EMF metrics (requests, latency_ms, events_sent; the drain's counts).
EMF_METRICS = set(metrics.REQUEST_METRICS) | set(metrics.DRAIN_METRICS)
# Added by the FullStory issue (FullStory refusing the API key); counted ahead of its arrival.
PENDING_REASONS = {"fullstory_key_forbidden"}
# The queue's own metrics, which the queue service publishes: the only ones not written by fs2split.
SQS_METRICS = {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}
PUBSUB_METRICS = {"num_undelivered_messages", "oldest_unacked_message_age"}


def monitoring_locals(directory: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for block in parse(directory / "monitoring.tf").get("locals", []):
        found.update(block)
    return found


def reason_metrics(directory: Any) -> dict[str, list[str]]:
    return dict(monitoring_locals(directory)["reason_metrics"])


def panels(*expressions: str) -> dict[str, str]:
    """Each panel's title and the text of its definition: the expressions split where a title starts."""
    found: dict[str, str] = {}
    for expression in expressions:
        for chunk in expression.split('title = "')[1:]:
            title, _, body = chunk.partition('"')
            found[title] = body
    return found


def aws_panels() -> dict[str, str]:
    body = resources(AWS)[("aws_cloudwatch_dashboard", "this")]["dashboard_body"]
    return panels(body, monitoring_locals(AWS)["queue_widgets"])


def gcp_panels() -> dict[str, str]:
    body = resources(GCP)[("google_monitoring_dashboard", "this")]["dashboard_json"]
    return panels(body, monitoring_locals(GCP)["queue_tiles"])


def gcp_log_metric_names() -> set[str]:
    local = monitoring_locals(GCP)
    return {"requests", *local["value_metrics"], *local["reason_metrics"]}


@pytest.mark.parametrize("directory", [AWS, GCP], ids=["aws", "gcp"])
def test_every_reason_counted_by_a_log_metric_is_one_the_code_answers(directory: Any) -> None:
    counted = {reason for reasons in reason_metrics(directory).values() for reason in reasons}

    assert counted - PENDING_REASONS <= {reason.value for reason in Reason}
    assert {"fme_unauthorized", "fullstory_key_forbidden"} <= set(reason_metrics(directory))


def test_each_cloudwatch_panel_plots_metrics_the_code_emits() -> None:
    for title, body in aws_panels().items():
        plotted = re.findall(r'\[\s*(local\.metrics_namespace|"AWS/SQS")\s*,\s*"([A-Za-z_]+)"', body)

        assert plotted, f"panel {title!r} names no metric"
        for namespace, name in plotted:
            allowed = SQS_METRICS if namespace == '"AWS/SQS"' else EMF_METRICS | set(reason_metrics(AWS))
            assert name in allowed, f"panel {title!r} plots {name}, which nothing emits"


def test_each_cloud_monitoring_panel_plots_a_log_based_metric_the_module_declares() -> None:
    for title, body in gcp_panels().items():
        own = re.findall(r'metric\.type=\\?"\$\{local\.metric_type\}/([a-z_]+)', body)
        pubsub = re.findall(r'metric\.type=\\?"pubsub\.googleapis\.com/subscription/([a-z_]+)', body)

        assert own or pubsub, f"panel {title!r} names no metric"
        assert set(own) <= gcp_log_metric_names(), title
        assert set(own) <= EMF_METRICS | set(reason_metrics(GCP)), title
        assert set(pubsub) <= PUBSUB_METRICS, title


@pytest.mark.parametrize("found", [aws_panels, gcp_panels], ids=["aws", "gcp"])
def test_the_dashboard_answers_the_operators_questions(found: Any) -> None:
    titles = " | ".join(found()).lower()

    for question in ("requests by outcome", "latency", "fme and fullstory failures", "queue depth and dead letters",
                     "oldest queued message"):  # fmt: skip
        assert question in titles


def test_gcp_log_based_metrics_carry_the_emf_names_and_label_by_route_and_outcome() -> None:
    declared = resources(GCP)
    requests = declared[("google_logging_metric", "requests")]

    assert gcp_log_metric_names() >= EMF_METRICS
    assert requests["name"].endswith("requests")
    assert {label["key"] for label in first(requests["metric_descriptor"])["labels"]} == {"route", "outcome"}
    assert first(declared[("google_logging_metric", "values")]["metric_descriptor"])["value_type"] == "DISTRIBUTION"
    assert monitoring_locals(GCP)["value_metrics"]["latency_ms"]["unit"] == "ms"


def test_every_field_a_gcp_metric_reads_is_in_the_code_s_log_lines(
    make_instance: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    handle(Request("POST", "/fullstory", {}, {}, event_bytes("fullstory-custom-event.json")), make_instance())
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    drain = metrics.line_metrics(False, "fs2split").for_drain(
        messages=1, events_sent=1, failed=0, oldest_message_age_s=1
    )
    text = (GCP / "monitoring.tf").read_text()

    read = set(re.findall(r"jsonPayload\.([a-z_]+)", text))
    assert read <= set(line) | set(drain) | {"reason"}
    assert {"route", "outcome", "latency_ms", "events_sent"} <= set(line)


def test_aws_reason_filters_match_the_reason_field_of_the_log_line() -> None:
    filters = resources(AWS)[("aws_cloudwatch_log_metric_filter", "reasons")]

    assert filters["log_group_name"] == "${aws_cloudwatch_log_group.this.name}"
    assert "$.reason = " in filters["pattern"]
    assert first(filters["metric_transformation"])["namespace"] == "${local.metrics_namespace}"


def test_aws_alarms_cover_dead_letters_old_messages_5xx_share_and_refused_keys() -> None:
    alarms = {name: body for (type_, name), body in resources(AWS).items() if type_ == "aws_cloudwatch_metric_alarm"}

    assert alarms["dead_letters"]["metric_name"] == "ApproximateNumberOfMessagesVisible"
    assert (alarms["dead_letters"]["threshold"], alarms["dead_letters"]["comparison_operator"]) == (
        0,
        "GreaterThanThreshold",
    )
    assert (alarms["oldest_message"]["metric_name"], alarms["oldest_message"]["threshold"]) == (
        "ApproximateAgeOfOldestMessage",
        900,
    )
    assert alarms["server_errors"]["threshold"] == 5
    expression = first(alarms["server_errors"]["metric_query"])["expression"]
    assert "retry" in expression
    assert "error" in expression
    assert {"fme_unauthorized", "fullstory_key_forbidden"} <= set(
        re.findall(r'"([a-z_]+)"', alarms["reasons"]["for_each"])
    )
    for name, alarm in alarms.items():
        assert alarm["alarm_actions"] == "${local.alarm_actions}", name


def test_aws_queue_alarms_exist_once_queue_names_are_given_or_the_module_makes_the_queues() -> None:
    alarms = resources(AWS)
    variables = blocks(AWS, "variable")
    watched = monitoring_locals(AWS)

    assert variables["queue_name"]["default"] is None
    assert variables["dead_letter_queue_name"]["default"] is None
    assert "local.monitored_dead_letters != null" in alarms[("aws_cloudwatch_metric_alarm", "dead_letters")]["count"]
    assert "local.monitored_queue != null" in alarms[("aws_cloudwatch_metric_alarm", "oldest_message")]["count"]
    # A name given wins; in queue mode the module's own queues (queue.tf) are watched without one.
    assert "var.queue_name" in watched["monitored_queue"]
    assert '${var.name}-events' in watched["monitored_queue"]
    assert "local.queue_mode" in watched["monitored_dead_letters"]
    assert '${var.name}-dead-letters' in watched["monitored_dead_letters"]


def test_gcp_alert_policies_cover_the_same_and_notify_the_given_channels() -> None:
    policies = {
        name: body for (type_, name), body in resources(GCP).items() if type_ == "google_monitoring_alert_policy"
    }

    def threshold(name: str) -> Any:
        return first(first(policies[name]["conditions"])["condition_threshold"])

    assert "num_undelivered_messages" in threshold("dead_letters")["filter"]
    assert threshold("dead_letters")["threshold_value"] == 0
    assert "oldest_unacked_message_age" in threshold("oldest_message")["filter"]
    assert threshold("oldest_message")["threshold_value"] == 900
    assert threshold("server_errors")["threshold_value"] == 0.05
    assert 'one_of(\\"retry\\", \\"error\\")' in threshold("server_errors")["filter"]
    assert "denominator_filter" in threshold("server_errors")
    assert {"fme_unauthorized", "fullstory_key_forbidden"} <= set(
        re.findall(r'"([a-z_]+)"', policies["reasons"]["for_each"])
    )
    assert "local.monitored_dead_letters != null" in policies["dead_letters"]["count"]
    watched = monitoring_locals(GCP)
    assert "var.pubsub_dead_letter_subscription_name" in watched["monitored_dead_letters"]
    assert '${var.name}-dead-letters' in watched["monitored_dead_letters"]
    assert '${var.name}-drain' in watched["monitored_subscription"]
    for name, policy in policies.items():
        assert policy["notification_channels"] == "${var.notification_channel_ids}", name
