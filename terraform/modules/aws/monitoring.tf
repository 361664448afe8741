# Delivery health at a glance: the function's log lines carry CloudWatch EMF blocks (fs2split/metrics.py), so
# requests, latency_ms and events_sent exist as metrics with no API call; per-reason counts come from log
# metric filters, since the reason is not a dimension. Queue panels and alarms appear once queue names are set.

locals {
  # The queues to watch: those named, else the ones queue.tf creates in queue mode, else none.
  monitored_queue        = var.queue_name != null ? var.queue_name : (local.queue_mode ? "${var.name}-events" : null)
  monitored_dead_letters = var.dead_letter_queue_name != null ? var.dead_letter_queue_name : (local.queue_mode ? "${var.name}-dead-letters" : null)

  # The namespace the code writes (FS2SPLIT_METRICS_NAMESPACE), so panels and alarms read what is written.
  metrics_namespace = lookup(var.environment, "FS2SPLIT_METRICS_NAMESPACE", "fs2split")
  monitoring        = var.monitoring ? 1 : 0
  alarm_actions     = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]
  outcome_classes   = ["delivered", "queued", "dropped", "refused", "retry", "error"]

  # Counted from the log line's reason: name => the reasons that count.
  reason_metrics = {
    fme_unauthorized        = ["fme_unauthorized"]
    fullstory_key_forbidden = ["fullstory_key_forbidden"]
    fme_failures            = ["fme_unavailable", "fme_unauthorized", "fme_rejected"]
    fullstory_failures      = ["fullstory_unavailable", "fullstory_rejected", "fullstory_key_forbidden"]
  }

  queue_widgets = concat(
    local.monitored_queue == null && local.monitored_dead_letters == null ? [] : [{
      type   = "metric"
      x      = 0
      y      = 12
      width  = 12
      height = 6
      properties = {
        title   = "Queue depth and dead letters (messages)"
        region  = data.aws_region.current.region
        view    = "timeSeries"
        stat    = "Maximum"
        period  = 60
        metrics = [for name in compact([local.monitored_queue, local.monitored_dead_letters]) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name]]
      }
    }],
    [{
      type   = "metric"
      x      = 12
      y      = 12
      width  = 12
      height = 6
      properties = {
        title  = "Oldest queued message (seconds)"
        region = data.aws_region.current.region
        view   = "timeSeries"
        period = 60
        metrics = concat(
          [[local.metrics_namespace, "oldest_message_age_s", "route", "drain", { stat = "Maximum", label = "at the drain's last run" }]],
          local.monitored_queue == null ? [] : [["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", local.monitored_queue, { stat = "Maximum" }]],
        )
      }
    }],
  )
}

resource "aws_cloudwatch_log_metric_filter" "reasons" {
  for_each       = var.monitoring ? local.reason_metrics : {}
  name           = "${var.name}-${each.key}"
  log_group_name = aws_cloudwatch_log_group.this.name
  pattern        = "{ ${join(" || ", [for reason in each.value : "$.reason = \"${reason}\""])} }"

  metric_transformation {
    name          = each.key
    namespace     = local.metrics_namespace
    value         = "1"
    default_value = "0"
    unit          = "Count"
  }
}

resource "aws_cloudwatch_dashboard" "this" {
  count          = local.monitoring
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = concat([
      {
        type   = "metric"
        x      = 0
        y      = 0
        width  = 12
        height = 6
        properties = {
          title   = "Requests by outcome"
          region  = data.aws_region.current.region
          view    = "timeSeries"
          stacked = true
          stat    = "Sum"
          period  = 60
          metrics = [for outcome in local.outcome_classes : [local.metrics_namespace, "requests", "outcome", outcome]]
        }
      },
      {
        type   = "metric"
        x      = 12
        y      = 0
        width  = 12
        height = 6
        properties = {
          title  = "Latency of delivered requests (ms)"
          region = data.aws_region.current.region
          view   = "timeSeries"
          period = 60
          metrics = [
            [local.metrics_namespace, "latency_ms", "outcome", "delivered", { stat = "p50", label = "p50" }],
            [local.metrics_namespace, "latency_ms", "outcome", "delivered", { stat = "p95", label = "p95" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 6
        width  = 12
        height = 6
        properties = {
          title   = "FME and FullStory failures"
          region  = data.aws_region.current.region
          view    = "timeSeries"
          stat    = "Sum"
          period  = 60
          metrics = [[local.metrics_namespace, "fme_failures"], [local.metrics_namespace, "fullstory_failures"]]
        }
      },
      {
        type   = "metric"
        x      = 12
        y      = 6
        width  = 12
        height = 6
        properties = {
          title  = "Events sent: to FME, to FullStory, by the drain"
          region = data.aws_region.current.region
          view   = "timeSeries"
          stat   = "Sum"
          period = 60
          metrics = [
            [local.metrics_namespace, "events_sent", "route", "fullstory", "outcome", "delivered", { label = "to FME" }],
            [local.metrics_namespace, "events_sent", "route", "split_impressions", "outcome", "delivered", { label = "to FullStory" }],
            [local.metrics_namespace, "events_sent", "route", "drain", { label = "by the drain" }],
          ]
        }
      },
    ], local.queue_widgets)
  })
}

# --- Alarms ----------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  count               = var.monitoring && local.monitored_dead_letters != null ? 1 : 0
  alarm_name          = "${var.name}-dead-letters"
  alarm_description   = "Messages reached the dead-letter queue: fix the cause, then run python -m fs2split redrive."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = local.monitored_dead_letters }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "oldest_message" {
  count               = var.monitoring && local.monitored_queue != null ? 1 : 0
  alarm_name          = "${var.name}-oldest-message"
  alarm_description   = "A queued message has waited over 15 minutes: the drain is failing or an upstream is down."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = local.monitored_queue }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 900
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "server_errors" {
  count               = local.monitoring
  alarm_name          = "${var.name}-5xx-rate"
  alarm_description   = "More than 5% of requests were answered 5xx (outcome retry or error) over 5 minutes."
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags

  metric_query {
    id    = "percent_5xx"
    label = "5xx answers (%)"
    # FILL: a class with no requests in the period counts 0 instead of blanking the sum.
    expression  = "100 * (FILL(retry, 0) + FILL(error, 0)) / (${join(" + ", [for c in local.outcome_classes : "FILL(${c}, 0)"])})"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = toset(local.outcome_classes)
    content {
      id = metric_query.value
      metric {
        namespace   = local.metrics_namespace
        metric_name = "requests"
        dimensions  = { outcome = metric_query.value }
        stat        = "Sum"
        period      = 300
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "reasons" {
  for_each            = var.monitoring ? toset(["fme_unauthorized", "fullstory_key_forbidden"]) : toset([])
  alarm_name          = "${var.name}-${replace(each.key, "_", "-")}"
  alarm_description   = "An upstream refused fs2split's key (${each.key}): fix the key; the senders' retries then deliver."
  namespace           = local.metrics_namespace
  metric_name         = aws_cloudwatch_log_metric_filter.reasons[each.key].metric_transformation[0].name
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}
