# Delivery health at a glance: log-based metrics read the fields of the function's JSON log lines (route,
# outcome, reason, latency_ms, events_sent, and the drain's run line), with the same names as the CloudWatch
# metrics. Queue panels and alerts appear once the Pub/Sub subscription names are set.

locals {
  # The subscriptions to watch: those named, else the ones queue.tf creates in queue mode, else none.
  monitored_subscription = var.pubsub_subscription_name != null ? var.pubsub_subscription_name : (local.queue_mode ? "${var.name}-drain" : null)
  monitored_dead_letters = var.pubsub_dead_letter_subscription_name != null ? var.pubsub_dead_letter_subscription_name : (local.queue_mode ? "${var.name}-dead-letters" : null)

  monitoring = var.monitoring ? 1 : 0
  # Both the webhook function and queue mode's drain (its name starts with the same name) log here.
  log_source = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name:\"${var.name}\""
  # Log-based metric names: "fs2split/requests" for the default name, as CloudWatch's fs2split namespace.
  metric_prefix = "${var.name}/"
  metric_type   = "logging.googleapis.com/user/${var.name}"

  # Counted from the log line's reason: name => the reasons that count.
  reason_metrics = {
    fme_unauthorized        = ["fme_unauthorized"]
    fullstory_key_forbidden = ["fullstory_key_forbidden"]
    fme_failures            = ["fme_unavailable", "fme_unauthorized", "fme_rejected"]
    fullstory_failures      = ["fullstory_unavailable", "fullstory_rejected", "fullstory_key_forbidden"]
  }
  # Values of the request lines and the drain's run line, as distributions: name => (filter, unit).
  value_metrics = {
    latency_ms           = { filter = "jsonPayload.outcome:*", unit = "ms" }
    events_sent          = { filter = "jsonPayload.events_sent:*", unit = "1" }
    messages             = { filter = "jsonPayload.route=\"drain\"", unit = "1" }
    failed               = { filter = "jsonPayload.route=\"drain\"", unit = "1" }
    oldest_message_age_s = { filter = "jsonPayload.route=\"drain\"", unit = "s" }
  }

  queue_tiles = [for tile in [
    local.monitored_subscription == null && local.monitored_dead_letters == null ? null : {
      title = "Queue depth and dead letters (messages)"
      dataSets = [for name in compact([local.monitored_subscription, local.monitored_dead_letters]) : {
        plotType = "LINE"
        timeSeriesQuery = { timeSeriesFilter = {
          filter      = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.label.subscription_id=\"${name}\""
          aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
        } }
      }]
    },
    {
      title = "Oldest queued message (seconds)"
      dataSets = concat(
        [{
          plotType = "LINE"
          timeSeriesQuery = { timeSeriesFilter = {
            filter      = "metric.type=\"${local.metric_type}/oldest_message_age_s\""
            aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_99" }
          } }
        }],
        local.monitored_subscription == null ? [] : [{
          plotType = "LINE"
          timeSeriesQuery = { timeSeriesFilter = {
            filter      = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.label.subscription_id=\"${local.monitored_subscription}\""
            aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX" }
          } }
        }],
      )
    },
  ] : tile if tile != null]
}

resource "google_logging_metric" "requests" {
  count   = local.monitoring
  project = var.project_id
  name    = "${local.metric_prefix}requests"
  filter  = "${local.log_source} AND jsonPayload.outcome:*"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "fs2split requests"
    labels {
      key         = "route"
      value_type  = "STRING"
      description = "The route: fullstory, split_impressions, healthz (empty when no route matched)."
    }
    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "delivered, queued, dropped, refused (4xx), retry (429, 503) or error (500, 502)."
    }
  }

  label_extractors = {
    route   = "EXTRACT(jsonPayload.route)"
    outcome = "EXTRACT(jsonPayload.outcome)"
  }
}

resource "google_logging_metric" "values" {
  for_each = var.monitoring ? local.value_metrics : {}
  project  = var.project_id
  name     = "${local.metric_prefix}${each.key}"
  filter   = "${local.log_source} AND ${each.value.filter}"

  value_extractor = "EXTRACT(jsonPayload.${each.key})"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = each.value.unit
    display_name = "fs2split ${each.key}"
    labels {
      key        = "route"
      value_type = "STRING"
    }
    labels {
      key        = "outcome"
      value_type = "STRING"
    }
  }

  label_extractors = {
    route   = "EXTRACT(jsonPayload.route)"
    outcome = "EXTRACT(jsonPayload.outcome)"
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 1.5
      scale              = 1
    }
  }
}

resource "google_logging_metric" "reasons" {
  for_each = var.monitoring ? local.reason_metrics : {}
  project  = var.project_id
  name     = "${local.metric_prefix}${each.key}"
  filter   = "${local.log_source} AND (${join(" OR ", [for reason in each.value : "jsonPayload.reason=\"${reason}\""])})"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"
  }
}

resource "google_monitoring_dashboard" "this" {
  count   = local.monitoring
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "fs2split ${var.name}"
    mosaicLayout = {
      columns = 12
      tiles = [for index, tile in concat([
        {
          title = "Requests by outcome"
          dataSets = [{
            plotType = "STACKED_BAR"
            timeSeriesQuery = { timeSeriesFilter = {
              filter      = "metric.type=\"${local.metric_type}/requests\""
              aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.outcome"] }
            } }
          }]
        },
        {
          title = "Latency of delivered requests (ms, p50 and p95)"
          dataSets = [for reducer in ["REDUCE_PERCENTILE_50", "REDUCE_PERCENTILE_95"] : {
            plotType = "LINE"
            timeSeriesQuery = { timeSeriesFilter = {
              filter      = "metric.type=\"${local.metric_type}/latency_ms\" AND metric.label.outcome=\"delivered\""
              aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = reducer }
            } }
          }]
        },
        {
          title = "FME and FullStory failures"
          dataSets = [
            {
              plotType = "LINE"
              timeSeriesQuery = { timeSeriesFilter = {
                filter      = "metric.type=\"${local.metric_type}/fme_failures\""
                aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM" }
              } }
            },
            {
              plotType = "LINE"
              timeSeriesQuery = { timeSeriesFilter = {
                filter      = "metric.type=\"${local.metric_type}/fullstory_failures\""
                aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_SUM" }
              } }
            },
          ]
        },
        ], local.queue_tiles) : {
        xPos   = (index % 2) * 6
        yPos   = floor(index / 2) * 4
        width  = 6
        height = 4
        widget = { title = tile.title, xyChart = { dataSets = tile.dataSets } }
      }]
    }
  })

  depends_on = [google_logging_metric.requests, google_logging_metric.values, google_logging_metric.reasons]
}

# --- Alert policies --------------------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "dead_letters" {
  count                 = var.monitoring && local.monitored_dead_letters != null ? 1 : 0
  project               = var.project_id
  display_name          = "${var.name}: dead letters"
  combiner              = "OR"
  notification_channels = var.notification_channel_ids
  documentation {
    content = "Messages reached the dead-letter subscription: fix the cause, then run python -m fs2split redrive."
  }
  conditions {
    display_name = "dead-letter subscription not empty"
    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.label.subscription_id=\"${local.monitored_dead_letters}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "oldest_message" {
  count                 = var.monitoring && local.monitored_subscription != null ? 1 : 0
  project               = var.project_id
  display_name          = "${var.name}: oldest queued message over 15 minutes"
  combiner              = "OR"
  notification_channels = var.notification_channel_ids
  documentation {
    content = "A queued message has waited over 15 minutes: the drain is failing or an upstream is down."
  }
  conditions {
    display_name = "oldest unacknowledged message older than 900 s"
    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.label.subscription_id=\"${local.monitored_subscription}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 900
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "server_errors" {
  count                 = local.monitoring
  project               = var.project_id
  display_name          = "${var.name}: over 5% of requests answered 5xx"
  combiner              = "OR"
  notification_channels = var.notification_channel_ids
  documentation {
    content = "More than 5% of requests were answered 5xx (outcome retry or error) over 5 minutes."
  }
  conditions {
    display_name = "5xx share over 5%"
    condition_threshold {
      filter             = "metric.type=\"${local.metric_type}/requests\" AND resource.type=\"cloud_run_revision\" AND metric.label.outcome=one_of(\"retry\", \"error\")"
      denominator_filter = "metric.type=\"${local.metric_type}/requests\" AND resource.type=\"cloud_run_revision\""
      comparison         = "COMPARISON_GT"
      threshold_value    = 0.05
      duration           = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  depends_on = [google_logging_metric.requests]
}

resource "google_monitoring_alert_policy" "reasons" {
  for_each              = var.monitoring ? toset(["fme_unauthorized", "fullstory_key_forbidden"]) : toset([])
  project               = var.project_id
  display_name          = "${var.name}: ${each.key}"
  combiner              = "OR"
  notification_channels = var.notification_channel_ids
  documentation {
    content = "An upstream refused fs2split's key (${each.key}): fix the key; the senders' retries then deliver."
  }
  conditions {
    display_name = "any ${each.key}"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_type}/${each.key}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  depends_on = [google_logging_metric.reasons]
}
