# Queue mode (delivery = "queue"): the webhook enqueues to SQS and answers; a second function, fed by Lambda's
# event source mapping, delivers in batches. Nothing here exists in direct mode (the default).

locals {
  queue_mode = var.delivery == "queue"
  # Enough receives to outlast an hour-long outage at the backoff, and never fewer than AWS's recommended 5.
  queue_max_receives = max(5, ceil(3600 / var.drain_backoff_seconds) + 1)

  queue_environment = local.queue_mode ? {
    FS2SPLIT_DELIVERY              = "queue"
    FS2SPLIT_QUEUE_URL             = aws_sqs_queue.events[0].url
    FS2SPLIT_DRAIN_BACKOFF_SECONDS = tostring(var.drain_backoff_seconds)
  } : {}
}

resource "aws_sqs_queue" "dead_letters" {
  count = local.queue_mode ? 1 : 0

  name                      = "${var.name}-dead-letters"
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps: time to inspect and redrive
  sqs_managed_sse_enabled   = var.queue_kms_key_arn == null
  kms_master_key_id         = var.queue_kms_key_arn
  tags                      = local.tags
}

resource "aws_sqs_queue" "events" {
  count = local.queue_mode ? 1 : 0

  name = "${var.name}-events"
  # At least six times the drain's timeout (AWS's rule for event source mappings).
  visibility_timeout_seconds = 6 * var.drain_timeout
  message_retention_seconds  = 1209600
  sqs_managed_sse_enabled    = var.queue_kms_key_arn == null
  kms_master_key_id          = var.queue_kms_key_arn
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letters[0].arn
    maxReceiveCount     = local.queue_max_receives
  })
  tags = local.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letters" {
  count = local.queue_mode ? 1 : 0

  queue_url = aws_sqs_queue.dead_letters[0].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.events[0].arn]
  })
}

# The webhook sends; the drain receives, deletes (through the mapping) and sets visibility. These queues only.
data "aws_iam_policy_document" "queue" {
  count = local.queue_mode ? 1 : 0

  statement {
    sid       = "UseOwnQueue"
    actions   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.events[0].arn]
  }

  statement {
    sid       = "WriteDrainLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.drain[0].arn}:*"]
  }

  dynamic "statement" {
    for_each = var.queue_kms_key_arn != null ? [1] : []
    content {
      sid       = "UseQueueKey"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [var.queue_kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "queue" {
  count = local.queue_mode ? 1 : 0

  name   = "${var.name}-queue"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.queue[0].json
}

resource "aws_cloudwatch_log_group" "drain" {
  #checkov:skip=CKV_AWS_338:Operational logs of the drain; 30 days by default to keep no more than needed (log_retention_days raises it).
  count = local.queue_mode ? 1 : 0

  name              = "/aws/lambda/${var.name}-drain"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
  tags              = local.tags
}

resource "aws_lambda_function" "drain" {
  #checkov:skip=CKV_AWS_116:Invoked by the SQS event source mapping only; failed messages go to the queue's own dead-letter queue.
  #checkov:skip=CKV_AWS_117:Calls only public APIs (FullStory, FME, SQS); a VPC would add a NAT gateway and nothing to protect.
  #checkov:skip=CKV_AWS_173:The environment holds settings and secret ARNs, never secret values; Lambda encrypts it at rest with its own key.
  #checkov:skip=CKV_AWS_272:Built from source by Terraform on the deployer's machine; code signing needs an AWS Signer profile, which a user can add.
  count = local.queue_mode ? 1 : 0

  function_name    = "${var.name}-drain"
  description      = "Delivers fs2split's queued webhooks to FME and FullStory in batches"
  role             = aws_iam_role.this.arn
  runtime          = var.runtime
  architectures    = [var.architecture]
  handler          = "main.lambda_drain"
  filename         = data.archive_file.code.output_path
  source_code_hash = data.archive_file.code.output_base64sha256
  layers           = [aws_lambda_layer_version.dependencies.arn]
  memory_size      = var.memory_size
  timeout          = var.drain_timeout
  tags             = local.tags
  # -1 leaves it unreserved; the mapping's maximum_concurrency is what caps the drain.
  reserved_concurrent_executions = var.reserved_concurrent_executions

  environment {
    variables = local.environment
  }

  tracing_config {
    mode = var.tracing_mode
  }

  depends_on = [aws_cloudwatch_log_group.drain, aws_iam_role_policy.queue]
}

resource "aws_lambda_event_source_mapping" "drain" {
  count = local.queue_mode ? 1 : 0

  event_source_arn                   = aws_sqs_queue.events[0].arn
  function_name                      = aws_lambda_function.drain[0].arn
  batch_size                         = var.queue_batch_size
  maximum_batching_window_in_seconds = var.queue_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.queue_maximum_concurrency
  }
}
