output "fullstory_webhook_url" {
  description = "Paste into FullStory: Settings > Webhooks."
  value       = module.fs2split.fullstory_webhook_url
}

output "impressions_webhook_url" {
  description = "Paste into FME's impressions webhook, with the placeholder replaced by the SPLIT_IMPRESSIONS_TOKEN value."
  value       = module.fs2split.impressions_webhook_url
}

output "secret_ids" {
  description = "Secret Manager secret per setting: gcloud secrets versions add ID --data-file=-"
  value       = module.fs2split.secret_ids
}

output "url" {
  description = "The function's base URL (GET /healthz answers there)."
  value       = module.fs2split.url
}

output "dead_letter_subscription" {
  description = "The subscription holding dead-lettered messages (queue mode), or null. python -m fs2split redrive moves its messages back."
  value       = module.fs2split.dead_letter_subscription
}
