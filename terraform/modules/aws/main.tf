locals {
  tags = merge({ app = "fs2split" }, var.tags)

  # Only the function's code; the dependencies ship in a layer built from requirements-aws.txt.
  code_files = toset(concat(
    ["main.py"],
    [for f in fileset(var.source_dir, "fs2split/**") : f if !strcontains(f, "__pycache__") && !endswith(f, ".pyc")],
    # The optional event mapping, read from beside main.py.
    fileexists("${var.source_dir}/fs2split.yaml") ? ["fs2split.yaml"] : [],
  ))

  secret_references = { for name, arn in var.secret_arns : "${name}_SECRET" => arn }
  environment       = merge(var.environment, local.secret_references, local.queue_environment, local.dedup_environment)
}

data "aws_region" "current" {}

# --- Code and dependencies ------------------------------------------------------------------------------

data "archive_file" "code" {
  type        = "zip"
  output_path = "${path.root}/.terraform/fs2split/${var.name}-code.zip"

  dynamic "source" {
    for_each = local.code_files
    content {
      content  = file("${var.source_dir}/${source.value}")
      filename = source.value
    }
  }
}

data "archive_file" "dependencies" {
  type        = "zip"
  source_dir  = var.dependencies_dir
  output_path = "${path.root}/.terraform/fs2split/${var.name}-dependencies.zip"
  excludes    = ["**/__pycache__/**"]

  lifecycle {
    precondition {
      condition     = fileexists("${var.dependencies_dir}/python/requests/__init__.py")
      error_message = "No dependencies in dependencies_dir/python: run the build step in terraform/modules/aws/README.md (pip install -r requirements-aws.txt --target ...)."
    }
  }
}

resource "aws_lambda_layer_version" "dependencies" {
  layer_name               = "${var.name}-dependencies"
  description              = "requests, urllib3, cachetools, PyYAML for fs2split (requirements-aws.txt)"
  filename                 = data.archive_file.dependencies.output_path
  source_code_hash         = data.archive_file.dependencies.output_base64sha256
  compatible_runtimes      = [var.runtime]
  compatible_architectures = [var.architecture]
}

# --- Logs and permissions -------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Operational logs of a webhook relay; 30 days by default to keep no more than needed (log_retention_days raises it).
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
  tags              = local.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-lambda"
  description        = "Runtime role of the ${var.name} Lambda: writes its logs, reads its own secrets."
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "permissions" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.secret_arns) > 0 ? [1] : []
    content {
      sid       = "ReadConfiguredSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = sort(values(var.secret_arns))
    }
  }

  dynamic "statement" {
    for_each = var.secrets_kms_key_arn != null && length(var.secret_arns) > 0 ? [1] : []
    content {
      sid       = "DecryptSecretsThroughSecretsManager"
      actions   = ["kms:Decrypt"]
      resources = [var.secrets_kms_key_arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${data.aws_region.current.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-runtime"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.permissions.json
}

# --- The function and its public URL ---------------------------------------------------------------------

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously through its Function URL only; a dead-letter queue applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_117:Calls only public APIs (FullStory, FME); a VPC would add a NAT gateway and nothing to protect.
  #checkov:skip=CKV_AWS_173:The environment holds settings and secret ARNs, never secret values; Lambda encrypts it at rest with its own key.
  #checkov:skip=CKV_AWS_272:Built from source by Terraform on the deployer's machine; code signing needs an AWS Signer profile, which a user can add.
  function_name                  = var.name
  description                    = "FullStory webhooks into Harness FME, FME impressions into FullStory"
  role                           = aws_iam_role.this.arn
  runtime                        = var.runtime
  architectures                  = [var.architecture]
  handler                        = "main.lambda_handler"
  filename                       = data.archive_file.code.output_path
  source_code_hash               = data.archive_file.code.output_base64sha256
  layers                         = [aws_lambda_layer_version.dependencies.arn]
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrent_executions
  tags                           = local.tags

  dynamic "environment" {
    for_each = length(local.environment) > 0 ? [1] : []
    content {
      variables = local.environment
    }
  }

  tracing_config {
    mode = var.tracing_mode
  }

  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]
}

resource "aws_lambda_function_url" "this" {
  #checkov:skip=CKV_AWS_258:A public webhook receiver by design: FullStory and FME cannot sign AWS requests. fs2split verifies FullStory's HMAC signature and the FME token itself.
  function_name      = aws_lambda_function.this.function_name
  authorization_type = "NONE"
}

# A public Function URL needs both permissions (the second since October 2025).
resource "aws_lambda_permission" "function_url" {
  #checkov:skip=CKV_AWS_301:Public by design, and only through the Function URL (function_url_auth_type = NONE); see aws_lambda_function_url.this.
  statement_id           = "AllowPublicFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "invoke_via_function_url" {
  #checkov:skip=CKV_AWS_301:Public by design, and only for calls that come through the Function URL (invoked_via_function_url).
  statement_id             = "AllowPublicInvokeViaFunctionUrl"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.this.function_name
  principal                = "*"
  invoked_via_function_url = true
}
