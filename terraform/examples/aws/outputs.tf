output "fullstory_webhook_url" {
  description = "Paste into FullStory: Settings > Webhooks."
  value       = module.fs2split.fullstory_webhook_url
}

output "impressions_webhook_url" {
  description = "Paste into FME's impressions webhook, with the placeholder replaced by the SPLIT_IMPRESSIONS_TOKEN value."
  value       = module.fs2split.impressions_webhook_url
}

output "secret_arns" {
  description = "Secrets Manager secret per setting: aws secretsmanager put-secret-value --secret-id ARN --secret-string ..."
  value       = { for name, secret in aws_secretsmanager_secret.this : name => secret.arn }
}

output "url" {
  description = "The Function URL (GET /healthz answers there)."
  value       = module.fs2split.url
}

output "log_group_name" {
  description = "CloudWatch Logs group to query with Logs Insights."
  value       = module.fs2split.log_group_name
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue to watch and redrive (queue mode), or null. python -m fs2split redrive moves its messages back."
  value       = module.fs2split.dead_letter_queue_url
}
