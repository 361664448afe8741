variable "project_id" {
  type        = string
  description = "Google Cloud project to deploy into."
}

variable "region" {
  type        = string
  description = "Region of the function."
  default     = "us-central1"
}

variable "secret_versions" {
  type        = map(string)
  description = "Secret Manager version to inject per secret, e.g. { SPLIT_API_KEY = \"1\" }. Empty on the first apply, which creates the (empty) secrets."
  default     = {}
}

variable "environment" {
  type        = map(string)
  description = "Non-secret settings, e.g. { SPLIT_TRAFFIC_TYPE = \"user\", LOG_LEVEL = \"INFO\" }."
  default     = {}
}

variable "dedup_store" {
  type        = string
  description = "memory (per-instance redelivery dedup) or firestore (shared by every instance: docs/dedup.md)."
  default     = "memory"
}

variable "delivery" {
  type        = string
  description = "direct (deliver inside the webhook) or queue (enqueue, deliver in batches from a drain: docs/queue.md)."
  default     = "direct"
}
