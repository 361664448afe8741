output "url" {
  description = "The function's HTTPS URL."
  value       = google_cloudfunctions2_function.this.url
}

output "fullstory_webhook_url" {
  description = "URL to paste into FullStory (Settings > Webhooks)."
  value       = "${google_cloudfunctions2_function.this.url}/fullstory"
}

output "impressions_webhook_url" {
  description = "URL to paste into FME's impressions webhook, after replacing the placeholder with the SPLIT_IMPRESSIONS_TOKEN value."
  value       = "${google_cloudfunctions2_function.this.url}/split/impressions?token=<SPLIT_IMPRESSIONS_TOKEN>"
}

output "function_name" {
  description = "Name of the Cloud Function (and of its Cloud Run service)."
  value       = google_cloudfunctions2_function.this.name
}

output "service_account_email" {
  description = "The function's runtime service account."
  value       = google_service_account.function.email
}

output "secret_ids" {
  description = "Secret Manager secret ID per setting name: add a value with `gcloud secrets versions add ID --data-file=-`."
  value       = { for name, secret in google_secret_manager_secret.this : name => secret.secret_id }
}

output "source_bucket" {
  description = "Bucket holding the uploaded source archives."
  value       = google_storage_bucket.source.name
}

output "pubsub_topic" {
  description = "The Pub/Sub topic the webhook publishes to (queue mode), or null."
  value       = one(google_pubsub_topic.events[*].id)
}

output "dead_letter_subscription" {
  description = "The subscription holding dead-lettered messages, to watch and replay (queue mode), or null."
  value       = one(google_pubsub_subscription.dead_letters[*].id)
}
