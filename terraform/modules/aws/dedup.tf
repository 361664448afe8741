# Shared redelivery dedup (docs/dedup.md): a DynamoDB table every instance claims keys in, so a
# FullStory retry that lands on another instance is not delivered twice. Off by default: with
# dedup_store = "memory" nothing here is created and the function keeps per-instance dedup.

variable "dedup_store" {
  type        = string
  description = "Where redelivery dedup lives: memory (per instance, the default) or dynamodb (one table shared by every instance)."
  default     = "memory"

  validation {
    condition     = contains(["memory", "dynamodb"], var.dedup_store)
    error_message = "dedup_store must be memory or dynamodb."
  }
}

variable "dedup_table_name" {
  type        = string
  description = "Name of the dedup table (FS2SPLIT_DEDUP_TABLE); null names it <name>-dedup."
  default     = null

  validation {
    condition     = var.dedup_table_name == null || can(regex("^[A-Za-z0-9_.-]{3,255}$", var.dedup_table_name))
    error_message = "dedup_table_name must be 3-255 letters, digits, underscores, dots or hyphens."
  }
}

variable "dedup_on_store_error" {
  type        = string
  description = "When the table does not answer: deliver anyway (at least once, with a WARNING) or refuse with 503 so the sender retries (FS2SPLIT_DEDUP_ON_STORE_ERROR)."
  default     = "deliver"

  validation {
    condition     = contains(["deliver", "refuse"], var.dedup_on_store_error)
    error_message = "dedup_on_store_error must be deliver or refuse."
  }
}

variable "dedup_point_in_time_recovery" {
  type        = bool
  description = "Point-in-time recovery of the dedup table. Off by default: it holds only short-lived keys, rebuilt by the next deliveries."
  default     = false
}

variable "dedup_kms_key_arn" {
  type        = string
  description = "Customer managed KMS key for the dedup table; null keeps DynamoDB's default encryption at rest (an AWS owned key)."
  default     = null
}

locals {
  dedup_enabled = var.dedup_store == "dynamodb"
  dedup_table   = coalesce(var.dedup_table_name, "${var.name}-dedup")

  # Merged into the function's environment in main.tf.
  dedup_environment = local.dedup_enabled ? {
    FS2SPLIT_DEDUP_STORE          = "dynamodb"
    FS2SPLIT_DEDUP_TABLE          = local.dedup_table
    FS2SPLIT_DEDUP_ON_STORE_ERROR = var.dedup_on_store_error
  } : {}
}

resource "aws_dynamodb_table" "dedup" {
  #checkov:skip=CKV_AWS_28:Holds only dedup keys that expire within the dedup window; a restore would bring back nothing worth having. dedup_point_in_time_recovery turns it on.
  #checkov:skip=CKV_AWS_119:Holds hashes of webhook bodies and timestamps, no personal data; encrypted at rest with an AWS owned key, and dedup_kms_key_arn sets a customer managed key.
  count = local.dedup_enabled ? 1 : 0

  name         = local.dedup_table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "id"
  tags         = local.tags

  attribute {
    name = "id"
    type = "S"
  }

  # DynamoDB deletes expired records lazily (hours later); fs2split checks expiry itself.
  ttl {
    enabled        = true
    attribute_name = "expires_at"
  }

  point_in_time_recovery {
    enabled = var.dedup_point_in_time_recovery
  }

  server_side_encryption {
    enabled     = var.dedup_kms_key_arn != null
    kms_key_arn = var.dedup_kms_key_arn
  }
}

# Exactly what a claim, done and release need, on this table only.
data "aws_iam_policy_document" "dedup" {
  count = local.dedup_enabled ? 1 : 0

  statement {
    sid       = "ClaimDedupKeys"
    actions   = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem"]
    resources = [aws_dynamodb_table.dedup[0].arn]
  }

  dynamic "statement" {
    for_each = var.dedup_kms_key_arn != null ? [1] : []
    content {
      sid       = "UseDedupTableKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.dedup_kms_key_arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["dynamodb.${data.aws_region.current.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "dedup" {
  count = local.dedup_enabled ? 1 : 0

  name   = "${var.name}-dedup"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.dedup[0].json
}

output "dedup_table_name" {
  description = "The shared dedup table (null when dedup_store is memory)."
  value       = local.dedup_enabled ? aws_dynamodb_table.dedup[0].name : null
}

output "dedup_table_arn" {
  description = "ARN of the shared dedup table (null when dedup_store is memory)."
  value       = local.dedup_enabled ? aws_dynamodb_table.dedup[0].arn : null
}
