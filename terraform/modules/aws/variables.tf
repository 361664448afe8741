variable "name" {
  type        = string
  description = "Name of the Lambda function; also names its role, log group and dependencies layer."
  default     = "fs2split"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,56}$", var.name))
    error_message = "name must be 1-56 letters, digits, hyphens or underscores."
  }
}

variable "source_dir" {
  type        = string
  description = "Directory holding main.py and the fs2split/ package (the repository root). Only those are zipped."
}

variable "dependencies_dir" {
  type        = string
  description = "Build output with the Lambda's dependencies under python/ (a layer): see the build step in this module's README."
}

variable "runtime" {
  type        = string
  description = "Lambda Python runtime; the dependencies must be built for the same Python version."
  default     = "python3.12"

  validation {
    condition     = can(regex("^python3\\.[0-9]+$", var.runtime))
    error_message = "runtime must be a Python runtime such as python3.12."
  }
}

variable "architecture" {
  type        = string
  description = "Instruction set; the dependencies must be built for it (manylinux2014_x86_64 or manylinux2014_aarch64)."
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "memory_size" {
  type        = number
  description = "Memory in MB."
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240."
  }
}

variable "timeout" {
  type        = number
  description = "Timeout in seconds. Keep it above fs2split's 8 s retry budget (FS2SPLIT_RETRY_BUDGET_SECONDS)."
  default     = 15

  validation {
    condition     = var.timeout > 8 && var.timeout <= 900
    error_message = "timeout must be more than 8 (the retry budget) and at most 900."
  }
}

variable "reserved_concurrent_executions" {
  type        = number
  description = "Concurrency reserved for (and capping) the function; -1 leaves it unreserved. Reserving needs spare account concurrency: new accounts have none."
  default     = -1

  validation {
    condition     = var.reserved_concurrent_executions >= -1 && floor(var.reserved_concurrent_executions) == var.reserved_concurrent_executions
    error_message = "reserved_concurrent_executions must be -1 or a whole number of at least 0."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Days CloudWatch keeps the function's logs."
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "logs_kms_key_arn" {
  type        = string
  description = "Customer managed KMS key for the log group; null keeps CloudWatch's own encryption."
  default     = null
}

variable "secret_arns" {
  type        = map(string)
  description = "Secrets Manager secret ARN per setting name, e.g. { SPLIT_API_KEY = aws_secretsmanager_secret.split.arn }. The function gets NAME_SECRET=ARN and may read exactly these secrets."
  default     = {}

  validation {
    condition = alltrue([for name in keys(var.secret_arns) : contains([
      "SPLIT_API_KEY", "FULLSTORY_API_KEY", "FULLSTORY_WEBHOOK_SECRET", "FULLSTORY_WEBHOOK_SECRET_PREVIOUS", "SPLIT_IMPRESSIONS_TOKEN",
      "FULLSTORY_STREAM_TOKEN",
    ], name)])
    error_message = "secret_arns keys may be SPLIT_API_KEY, FULLSTORY_API_KEY, FULLSTORY_WEBHOOK_SECRET, FULLSTORY_WEBHOOK_SECRET_PREVIOUS, SPLIT_IMPRESSIONS_TOKEN and FULLSTORY_STREAM_TOKEN."
  }

  validation {
    condition     = alltrue([for arn in values(var.secret_arns) : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+-[A-Za-z0-9]{6}$", arn))])
    error_message = "secret_arns values must be complete secret ARNs, with the 6-character suffix Secrets Manager adds."
  }
}

variable "secrets_kms_key_arn" {
  type        = string
  description = "Customer managed KMS key the secrets are encrypted with, if any: the function is allowed kms:Decrypt on it through Secrets Manager. Null for the AWS managed key."
  default     = null
}

variable "environment" {
  type        = map(string)
  description = "Non-secret settings for the function: SPLIT_EVENTS_URL, FULLSTORY_API_URL, SPLIT_TRAFFIC_TYPE, LOG_LEVEL and any FS2SPLIT_* setting. Secrets go in Secrets Manager, never here."
  default     = {}

  validation {
    condition = alltrue([for key in keys(var.environment) : !contains([
      "SPLIT_API_KEY", "FULLSTORY_API_KEY", "FULLSTORY_WEBHOOK_SECRET", "FULLSTORY_WEBHOOK_SECRET_PREVIOUS", "SPLIT_IMPRESSIONS_TOKEN",
      "FULLSTORY_STREAM_TOKEN",
    ], key)])
    error_message = "environment must not hold secret values: pass secret ARNs in secret_arns instead."
  }
}

variable "tracing_mode" {
  type        = string
  description = "X-Ray tracing: PassThrough (trace only when the caller asks; no cost by default) or Active."
  default     = "PassThrough"

  validation {
    condition     = contains(["PassThrough", "Active"], var.tracing_mode)
    error_message = "tracing_mode must be PassThrough or Active."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags for every resource the module creates."
  default     = {}
}

variable "monitoring" {
  type        = bool
  description = "Create the CloudWatch dashboard, log metric filters and alarms (monitoring.tf)."
  default     = true
}

variable "alarm_sns_topic_arn" {
  type        = string
  description = "SNS topic ARN the alarms notify (alarm and OK); null creates the alarms without notifications."
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be an SNS topic ARN (arn:aws:sns:...)."
  }
}

variable "queue_name" {
  type        = string
  description = "Name of an SQS queue to watch (panels, oldest-message alarm); null watches the queue queue.tf makes in queue mode, else none."
  default     = null
}

variable "dead_letter_queue_name" {
  type        = string
  description = "Name of a dead-letter queue to watch (panel, dead-letters alarm); null watches the one queue.tf makes in queue mode, else none."
  default     = null
}

variable "delivery" {
  type        = string
  description = "\"direct\" delivers inside the webhook; \"queue\" enqueues to SQS and delivers from a drain function in batches (docs/queue.md)."
  default     = "direct"

  validation {
    condition     = contains(["direct", "queue"], var.delivery)
    error_message = "delivery must be direct or queue."
  }
}

variable "drain_timeout" {
  type        = number
  description = "Timeout of the drain function in seconds (queue mode); the queue's visibility timeout is six times this."
  default     = 60

  validation {
    condition     = var.drain_timeout >= 10 && var.drain_timeout <= 900
    error_message = "drain_timeout must be between 10 and 900."
  }
}

variable "drain_backoff_seconds" {
  type        = number
  description = "How long a message that failed for now stays invisible before the next try (FS2SPLIT_DRAIN_BACKOFF_SECONDS); the queue's maxReceiveCount is set to outlast an hour at this backoff."
  default     = 60

  validation {
    condition     = var.drain_backoff_seconds >= 1 && var.drain_backoff_seconds <= 600
    error_message = "drain_backoff_seconds must be between 1 and 600."
  }
}

variable "queue_batch_size" {
  type        = number
  description = "Most messages per drain invocation (queue mode); up to 10,000 for a standard queue."
  default     = 1000

  validation {
    condition     = var.queue_batch_size >= 1 && var.queue_batch_size <= 10000
    error_message = "queue_batch_size must be between 1 and 10000."
  }
}

variable "queue_batching_window_seconds" {
  type        = number
  description = "How long Lambda gathers messages before invoking the drain (queue mode): the added delivery latency. At least 1 when queue_batch_size is over 10."
  default     = 10

  validation {
    condition     = var.queue_batching_window_seconds >= 0 && var.queue_batching_window_seconds <= 300
    error_message = "queue_batching_window_seconds must be between 0 and 300."
  }
}

variable "queue_maximum_concurrency" {
  type        = number
  description = "Most drain invocations at once (queue mode): fewer, fuller batches and a cap on FME's call rate."
  default     = 2

  validation {
    condition     = var.queue_maximum_concurrency >= 2 && var.queue_maximum_concurrency <= 1000
    error_message = "queue_maximum_concurrency must be between 2 and 1000."
  }
}

variable "queue_kms_key_arn" {
  type        = string
  description = "Customer managed KMS key for the queues (queue mode); null uses SQS-managed encryption."
  default     = null
}
