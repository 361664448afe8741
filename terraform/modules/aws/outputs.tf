output "url" {
  description = "The Function URL, without a trailing slash."
  value       = trimsuffix(aws_lambda_function_url.this.function_url, "/")
}

output "fullstory_webhook_url" {
  description = "URL to paste into FullStory (Settings > Webhooks)."
  value       = "${trimsuffix(aws_lambda_function_url.this.function_url, "/")}/fullstory"
}

output "impressions_webhook_url" {
  description = "URL to paste into FME's impressions webhook, after replacing the placeholder with the SPLIT_IMPRESSIONS_TOKEN value."
  value       = "${trimsuffix(aws_lambda_function_url.this.function_url, "/")}/split/impressions?token=<SPLIT_IMPRESSIONS_TOKEN>"
}

output "function_name" {
  description = "Name of the Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the Lambda function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "CloudWatch Logs group with the function's JSON log lines."
  value       = aws_cloudwatch_log_group.this.name
}

output "queue_url" {
  description = "URL of the SQS queue the webhook writes to (queue mode), or null."
  value       = one(aws_sqs_queue.events[*].url)
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue to watch and redrive (queue mode), or null."
  value       = one(aws_sqs_queue.dead_letters[*].url)
}
