# fs2split on Cloud Functions 2nd gen. Run from this folder:
#   terraform init && terraform apply -var project_id=my-project
# then add the secret values (see the secret_ids output) and apply again with secret_versions set.

provider "google" {
  project = var.project_id
  region  = var.region
}

# APIs a 2nd-gen function needs; left enabled on destroy, since other things in the project may use them.
resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

module "fs2split" {
  source = "../../modules/gcp"

  project_id = var.project_id
  region     = var.region
  # The repository root: main.py, requirements.txt and fs2split/ are taken from there.
  source_dir = "${path.root}/../../.."

  secrets_mode    = "env"
  secret_versions = var.secret_versions
  environment     = var.environment
  dedup_store     = var.dedup_store
  delivery        = var.delivery

  depends_on = [google_project_service.apis]
}
