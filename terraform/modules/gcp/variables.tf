variable "project_id" {
  type        = string
  description = "Google Cloud project to deploy into."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6-30 lowercase letters, digits and hyphens), not a project number."
  }
}

variable "region" {
  type        = string
  description = "Region of the function, its source bucket and its Cloud Run service."
  default     = "us-central1"
}

variable "name" {
  type        = string
  description = "Name of the function; also the prefix of the service account, the secrets and the source bucket."
  default     = "fs2split"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,20}[a-z0-9]$", var.name))
    error_message = "name must be 6-22 lowercase letters, digits and hyphens, starting with a letter (it prefixes the service account ID)."
  }
}

variable "source_dir" {
  type        = string
  description = "Directory holding main.py, requirements.txt and the fs2split/ package (the repository root). Only those are uploaded."
}

variable "runtime" {
  type        = string
  description = "Cloud Functions Python runtime."
  default     = "python312"

  validation {
    condition     = can(regex("^python3[0-9]+$", var.runtime))
    error_message = "runtime must be a Python runtime such as python312."
  }
}

variable "available_memory" {
  type        = string
  description = "Memory of each instance, in Cloud Run units."
  default     = "256Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|M|G)$", var.available_memory))
    error_message = "available_memory must look like 256Mi or 1Gi."
  }
}

variable "timeout_seconds" {
  type        = number
  description = "Request timeout. Keep it above fs2split's 8 s retry budget (FS2SPLIT_RETRY_BUDGET_SECONDS)."
  default     = 15

  validation {
    condition     = var.timeout_seconds > 8 && var.timeout_seconds <= 3600
    error_message = "timeout_seconds must be more than 8 (the retry budget) and at most 3600."
  }
}

variable "max_instance_count" {
  type        = number
  description = "Upper bound on concurrently running instances: caps cost if the public URL is flooded."
  default     = 20

  validation {
    condition     = var.max_instance_count >= 1 && floor(var.max_instance_count) == var.max_instance_count
    error_message = "max_instance_count must be a whole number of at least 1."
  }
}

variable "allow_unauthenticated" {
  type        = bool
  description = "Grant roles/run.invoker to allUsers. FullStory and FME call without Google credentials, so the webhooks need it; fs2split checks the webhook signature and the impressions token itself."
  default     = true
}

variable "secrets" {
  type        = set(string)
  description = "Secrets to create in Secret Manager, empty (add versions out of band), and grant the function access to. List only the ones you will give a value: a wired secret without a version fails at runtime."
  default     = ["SPLIT_API_KEY", "FULLSTORY_API_KEY", "FULLSTORY_WEBHOOK_SECRET", "SPLIT_IMPRESSIONS_TOKEN"]

  validation {
    condition = alltrue([for name in var.secrets : contains([
      "SPLIT_API_KEY", "FULLSTORY_API_KEY", "FULLSTORY_WEBHOOK_SECRET", "FULLSTORY_WEBHOOK_SECRET_PREVIOUS", "SPLIT_IMPRESSIONS_TOKEN",
      "FULLSTORY_STREAM_TOKEN",
    ], name)])
    error_message = "secrets may hold SPLIT_API_KEY, FULLSTORY_API_KEY, FULLSTORY_WEBHOOK_SECRET, FULLSTORY_WEBHOOK_SECRET_PREVIOUS, SPLIT_IMPRESSIONS_TOKEN and FULLSTORY_STREAM_TOKEN."
  }
}

variable "secrets_mode" {
  type        = string
  description = "How the function gets its secrets. \"env\": Cloud Run injects each secret with a version in secret_versions as an environment variable at instance start (no Secret Manager client in the function; a new version needs an apply). \"reference\": the function gets NAME_SECRET=projects/P/secrets/S/versions/V for every secret and reads it on first use, re-reading every FS2SPLIT_SECRET_TTL_SECONDS (so \"latest\" follows rotation without an apply)."
  default     = "env"

  validation {
    condition     = contains(["env", "reference"], var.secrets_mode)
    error_message = "secrets_mode must be \"env\" or \"reference\"."
  }
}

variable "secret_versions" {
  type        = map(string)
  description = "Secret Manager version per secret name, e.g. { SPLIT_API_KEY = \"1\" }. In env mode only the secrets listed here are wired (pin numbers, not latest); in reference mode unlisted secrets use latest."
  default     = {}

  validation {
    condition     = alltrue([for version in values(var.secret_versions) : can(regex("^([1-9][0-9]*|latest)$", version))])
    error_message = "secret_versions values must be version numbers (or latest)."
  }
}

variable "environment" {
  type        = map(string)
  description = "Non-secret settings for the function: SPLIT_EVENTS_URL, FULLSTORY_API_URL, SPLIT_TRAFFIC_TYPE, LOG_LEVEL and any FS2SPLIT_* setting. Secrets go in Secret Manager, never here."
  default     = {}

  validation {
    condition = alltrue([for key in keys(var.environment) : !contains([
      "SPLIT_API_KEY", "FULLSTORY_API_KEY", "FULLSTORY_WEBHOOK_SECRET", "FULLSTORY_WEBHOOK_SECRET_PREVIOUS", "SPLIT_IMPRESSIONS_TOKEN",
      "FULLSTORY_STREAM_TOKEN",
    ], key)])
    error_message = "environment must not hold secret values: create them with the secrets variable instead."
  }
}

variable "build_service_account" {
  type        = string
  description = "Service account (projects/P/serviceAccounts/EMAIL) Cloud Build uses to build the function; null uses the project's default."
  default     = null
}

variable "source_bucket_name" {
  type        = string
  description = "Name of the bucket that holds the source archive; null derives PROJECT-NAME-source."
  default     = null
}

variable "labels" {
  type        = map(string)
  description = "Labels for the function, its bucket and its secrets."
  default     = {}
}

variable "monitoring" {
  type        = bool
  description = "Create the log-based metrics, the Cloud Monitoring dashboard and the alert policies (monitoring.tf); needs the Monitoring API enabled."
  default     = true
}

variable "notification_channel_ids" {
  type        = list(string)
  description = "Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) the alert policies notify; empty: no notifications."
  default     = []

  validation {
    condition     = alltrue([for id in var.notification_channel_ids : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", id))])
    error_message = "notification_channel_ids must be ids of the form projects/P/notificationChannels/N."
  }
}

variable "pubsub_subscription_name" {
  type        = string
  description = "Short name of a pull subscription to watch (panels, oldest-message alert); null watches the one queue.tf makes in queue mode, else none."
  default     = null
}

variable "pubsub_dead_letter_subscription_name" {
  type        = string
  description = "Short name of a dead-letter subscription to watch (panel, dead-letters alert); null watches the one queue.tf makes in queue mode, else none."
  default     = null
}

variable "delivery" {
  type        = string
  description = "\"direct\" delivers inside the webhook; \"queue\" publishes to Pub/Sub and delivers from a scheduled drain function in batches (docs/queue.md)."
  default     = "direct"

  validation {
    condition     = contains(["direct", "queue"], var.delivery)
    error_message = "delivery must be direct or queue."
  }
}

variable "drain_timeout_seconds" {
  type        = number
  description = "Timeout of the drain function in seconds (queue mode); it pulls until 10 s before it."
  default     = 60

  validation {
    condition     = var.drain_timeout_seconds >= 20 && var.drain_timeout_seconds <= 540
    error_message = "drain_timeout_seconds must be between 20 and 540."
  }
}

variable "drain_backoff_seconds" {
  type        = number
  description = "Ack deadline given back to a message that failed for now (FS2SPLIT_DRAIN_BACKOFF_SECONDS); the subscription's max_delivery_attempts is set to outlast an hour."
  default     = 60

  validation {
    condition     = var.drain_backoff_seconds >= 1 && var.drain_backoff_seconds <= 600
    error_message = "drain_backoff_seconds must be between 1 and 600."
  }
}

variable "queue_kms_key_name" {
  type        = string
  description = "Customer managed KMS key for the Pub/Sub topics (queue mode); null uses Google-managed encryption."
  default     = null
}
