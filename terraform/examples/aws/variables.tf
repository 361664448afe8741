variable "region" {
  type        = string
  description = "AWS region to deploy into."
  default     = "us-east-1"
}

variable "secrets" {
  type        = set(string)
  description = "Secrets to create in Secrets Manager (without a value: add it with put-secret-value) and let the function read. List only the ones you will give a value."
  default     = ["SPLIT_API_KEY", "FULLSTORY_API_KEY", "FULLSTORY_WEBHOOK_SECRET", "SPLIT_IMPRESSIONS_TOKEN"]
}

variable "environment" {
  type        = map(string)
  description = "Non-secret settings, e.g. { SPLIT_TRAFFIC_TYPE = \"user\", LOG_LEVEL = \"INFO\" }."
  default     = {}
}

variable "dedup_store" {
  type        = string
  description = "memory (per-instance redelivery dedup) or dynamodb (shared by every instance: docs/dedup.md)."
  default     = "memory"
}

variable "delivery" {
  type        = string
  description = "direct (deliver inside the webhook) or queue (enqueue, deliver in batches from a drain: docs/queue.md)."
  default     = "direct"
}
