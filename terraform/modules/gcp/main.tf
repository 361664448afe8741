locals {
  labels = merge({ app = "fs2split" }, var.labels)

  # Only the function's code: main.py, requirements.txt (Cloud Build installs it) and the package.
  source_files = toset(concat(
    ["main.py", "requirements.txt"],
    [for f in fileset(var.source_dir, "fs2split/**") : f if !strcontains(f, "__pycache__") && !endswith(f, ".pyc")],
    # The optional event mapping, read from beside main.py.
    fileexists("${var.source_dir}/fs2split.yaml") ? ["fs2split.yaml"] : [],
  ))

  secret_ids = { for name in var.secrets : name => "${var.name}-${lower(replace(name, "_", "-"))}" }

  injected_secrets = var.secrets_mode == "env" ? {
    for name, version in var.secret_versions : name => version if contains(var.secrets, name)
  } : {}

  secret_references = var.secrets_mode == "reference" ? {
    for name in var.secrets : "${name}_SECRET" => "projects/${var.project_id}/secrets/${local.secret_ids[name]}/versions/${lookup(var.secret_versions, name, "latest")}"
  } : {}
}

# --- Source: zipped by Terraform, uploaded under its hash so a code change redeploys ------------------------

data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.root}/.terraform/fs2split/${var.name}-gcp-source.zip"

  dynamic "source" {
    for_each = local.source_files
    content {
      content  = file("${var.source_dir}/${source.value}")
      filename = source.value
    }
  }
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only the function's source archive, written by Terraform; access logs would record nothing but deploys.
  #checkov:skip=CKV_GCP_78:Objects are immutable and named by content hash, and every version is rebuilt from git: versioning would only keep garbage.
  project                     = var.project_id
  name                        = coalesce(var.source_bucket_name, "${var.project_id}-${var.name}-source")
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = local.labels
}

resource "google_storage_bucket_object" "source" {
  bucket = google_storage_bucket.source.name
  name   = "${var.name}/source-${data.archive_file.source.output_md5}.zip"
  source = data.archive_file.source.output_path
}

# --- Identity and secrets ---------------------------------------------------------------------------------

resource "google_service_account" "function" {
  project      = var.project_id
  account_id   = var.name
  display_name = "fs2split function ${var.name}"
  description  = "Runtime identity of the ${var.name} Cloud Function: reads its own secrets, nothing else."
}

# Created empty: values are added out of band (gcloud secrets versions add), so none is ever in state.
resource "google_secret_manager_secret" "this" {
  for_each = local.secret_ids

  project   = var.project_id
  secret_id = each.value
  labels    = local.labels

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_iam_member" "function" {
  for_each = google_secret_manager_secret.this

  project   = var.project_id
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function.email}"
}

# --- The function ---------------------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "this" {
  #checkov:skip=CKV_GCP_124:FullStory and FME call from the internet; ingress must be ALLOW_ALL for a webhook receiver (access control is the signature and token check).
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = "FullStory webhooks into Harness FME, FME impressions into FullStory"
  labels      = local.labels

  build_config {
    runtime         = var.runtime
    entry_point     = "fs2split"
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory               = var.available_memory
    timeout_seconds                = var.timeout_seconds
    max_instance_count             = var.max_instance_count
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function.email
    environment_variables          = merge(var.environment, local.secret_references, local.queue_environment, local.dedup_environment)

    dynamic "secret_environment_variables" {
      for_each = local.injected_secrets
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.this[secret_environment_variables.key].secret_id
        version    = secret_environment_variables.value
      }
    }
  }

  lifecycle {
    precondition {
      condition     = alltrue([for name in keys(var.secret_versions) : contains(var.secrets, name)])
      error_message = "Every key of secret_versions must also be in secrets."
    }
  }

  # Cloud Run checks secret access when a revision starts.
  depends_on = [google_secret_manager_secret_iam_member.function]
}

# FullStory and FME call without Google credentials: the webhook needs a public invoker on the
# function's Cloud Run service (the Cloud Functions invoker role alone does not let requests through).
resource "google_cloud_run_service_iam_member" "public" {
  #checkov:skip=CKV_GCP_102:A public webhook receiver by design; fs2split verifies FullStory's HMAC signature and the FME token on every request.
  count = var.allow_unauthenticated ? 1 : 0

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.this.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
