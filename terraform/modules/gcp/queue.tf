# Queue mode (delivery = "queue"): the webhook publishes to Pub/Sub and answers; a private drain function, run by
# Cloud Scheduler every minute, pulls the subscription and delivers in batches. Nothing here exists in direct mode.

locals {
  queue_mode = var.delivery == "queue"
  # Pub/Sub redelivers at most once a drain run (every minute) or once the backoff ran out, whichever is later:
  # enough attempts to outlast an hour-long outage, within Pub/Sub's 5..100.
  queue_max_attempts = min(100, max(5, ceil(3600 / max(var.drain_backoff_seconds, 60)) + 1))

  queue_environment = local.queue_mode ? {
    FS2SPLIT_DELIVERY              = "queue"
    FS2SPLIT_PUBSUB_TOPIC          = google_pubsub_topic.events[0].id
    FS2SPLIT_PUBSUB_SUBSCRIPTION   = google_pubsub_subscription.drain[0].id
    FS2SPLIT_DRAIN_BACKOFF_SECONDS = tostring(var.drain_backoff_seconds)
    # Pulls stop in time for the last batch to be delivered before the function's timeout.
    FS2SPLIT_DRAIN_SECONDS = tostring(max(10, var.drain_timeout_seconds - 10))
  } : {}
}

data "google_project" "this" {
  count      = local.queue_mode ? 1 : 0
  project_id = var.project_id
}

resource "google_pubsub_topic" "events" {
  count = local.queue_mode ? 1 : 0

  project                    = var.project_id
  name                       = "${var.name}-events"
  labels                     = local.labels
  message_retention_duration = "604800s"
  kms_key_name               = var.queue_kms_key_name
}

resource "google_pubsub_topic" "dead_letters" {
  count = local.queue_mode ? 1 : 0

  project      = var.project_id
  name         = "${var.name}-dead-letters"
  labels       = local.labels
  kms_key_name = var.queue_kms_key_name
}

resource "google_pubsub_subscription" "drain" {
  count = local.queue_mode ? 1 : 0

  project = var.project_id
  name    = "${var.name}-drain"
  topic   = google_pubsub_topic.events[0].id
  labels  = local.labels
  # Above one pull + delivery of a batch; failed messages get the backoff as their deadline instead.
  ack_deadline_seconds       = 120
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = "" # never expires, even when no drain ran for 31 days
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letters[0].id
    max_delivery_attempts = local.queue_max_attempts
  }
}

# Without a subscription, messages published to the dead-letter topic are dropped: this one keeps them 7 days.
resource "google_pubsub_subscription" "dead_letters" {
  count = local.queue_mode ? 1 : 0

  project                    = var.project_id
  name                       = "${var.name}-dead-letters"
  topic                      = google_pubsub_topic.dead_letters[0].id
  labels                     = local.labels
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
}

# The function's account publishes (webhook) and pulls (drain); nothing else.
resource "google_pubsub_topic_iam_member" "publisher" {
  count = local.queue_mode ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.events[0].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.function.email}"
}

resource "google_pubsub_subscription_iam_member" "subscriber" {
  count = local.queue_mode ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.drain[0].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.function.email}"
}

# Dead-lettering is done by Pub/Sub's own service agent: it publishes to the dead-letter topic and acknowledges
# on the subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  count = local.queue_mode ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.dead_letters[0].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:service-${data.google_project.this[0].number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  count = local.queue_mode ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.drain[0].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:service-${data.google_project.this[0].number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_cloudfunctions2_function" "drain" {
  #checkov:skip=CKV_GCP_124:Cloud Scheduler must reach it and counting its calls as internal is not confirmed for every setup; the drain is private by IAM instead (only the scheduler's account may invoke it).
  count = local.queue_mode ? 1 : 0

  project     = var.project_id
  location    = var.region
  name        = "${var.name}-drain"
  description = "Delivers fs2split's queued webhooks to FME and FullStory in batches"
  labels      = local.labels

  build_config {
    runtime         = var.runtime
    entry_point     = "drain"
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory = var.available_memory
    timeout_seconds  = var.drain_timeout_seconds
    # Cloud Scheduler never overlaps runs of one job: one instance is all the drain needs.
    max_instance_count             = 1
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function.email
    environment_variables          = merge(var.environment, local.secret_references, local.queue_environment, local.dedup_environment)

    dynamic "secret_environment_variables" {
      for_each = local.injected_secrets
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.this[secret_environment_variables.key].secret_id
        version    = secret_environment_variables.value
      }
    }
  }

  depends_on = [google_secret_manager_secret_iam_member.function]
}

# The scheduler calls the drain with an OIDC token of its own account, the only invoker of the (private) drain.
resource "google_service_account" "scheduler" {
  count = local.queue_mode ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name}-drain-cron"
  display_name = "fs2split drain scheduler ${var.name}"
  description  = "Cloud Scheduler's identity for calling the ${var.name}-drain function."
}

resource "google_cloud_run_service_iam_member" "scheduler" {
  count = local.queue_mode ? 1 : 0

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.drain[0].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler[0].email}"
}

resource "google_cloud_scheduler_job" "drain" {
  count = local.queue_mode ? 1 : 0

  project          = var.project_id
  region           = var.region
  name             = "${var.name}-drain"
  description      = "Runs the fs2split drain: pull Pub/Sub, deliver in batches"
  schedule         = "* * * * *"
  attempt_deadline = "${var.drain_timeout_seconds + 30}s"

  retry_config {
    retry_count = 0 # the next minute's run is the retry
  }

  http_target {
    uri         = google_cloudfunctions2_function.drain[0].url
    http_method = "POST"

    oidc_token {
      service_account_email = google_service_account.scheduler[0].email
      audience              = google_cloudfunctions2_function.drain[0].url
    }
  }

  depends_on = [google_cloud_run_service_iam_member.scheduler]
}
