# Shared redelivery dedup (docs/dedup.md): a Firestore collection every instance claims keys in, so
# a FullStory retry that lands on another instance is not delivered twice. Off by default: with
# dedup_store = "memory" nothing here is created and the function keeps per-instance dedup.

variable "dedup_store" {
  type        = string
  description = "Where redelivery dedup lives: memory (per instance, the default) or firestore (one collection shared by every instance)."
  default     = "memory"

  validation {
    condition     = contains(["memory", "firestore"], var.dedup_store)
    error_message = "dedup_store must be memory or firestore."
  }
}

variable "dedup_collection" {
  type        = string
  description = "Firestore collection of the dedup records (FS2SPLIT_DEDUP_TABLE); null names it <name>-dedup."
  default     = null

  validation {
    condition     = var.dedup_collection == null || can(regex("^[A-Za-z0-9_.-]{3,255}$", var.dedup_collection))
    error_message = "dedup_collection must be 3-255 letters, digits, underscores, dots or hyphens."
  }
}

variable "dedup_firestore_database" {
  type        = string
  description = "Firestore database holding the collection (FS2SPLIT_FIRESTORE_DATABASE); it must exist unless dedup_firestore_location is set."
  default     = "(default)"

  validation {
    condition     = can(regex("^(\\(default\\)|[a-z][a-z0-9-]{2,62})$", var.dedup_firestore_database))
    error_message = "dedup_firestore_database must be (default) or a Firestore database id."
  }
}

variable "dedup_firestore_location" {
  type        = string
  description = "Set (e.g. nam5, eur3, us-central1) to create the Firestore database in native mode; null uses an existing one."
  default     = null
}

variable "dedup_on_store_error" {
  type        = string
  description = "When Firestore does not answer: deliver anyway (at least once, with a WARNING) or refuse with 503 so the sender retries (FS2SPLIT_DEDUP_ON_STORE_ERROR)."
  default     = "deliver"

  validation {
    condition     = contains(["deliver", "refuse"], var.dedup_on_store_error)
    error_message = "dedup_on_store_error must be deliver or refuse."
  }
}

locals {
  dedup_enabled    = var.dedup_store == "firestore"
  dedup_collection = coalesce(var.dedup_collection, "${var.name}-dedup")

  # Merged into the function's environment in main.tf.
  dedup_environment = local.dedup_enabled ? {
    FS2SPLIT_DEDUP_STORE          = "firestore"
    FS2SPLIT_DEDUP_TABLE          = local.dedup_collection
    FS2SPLIT_FIRESTORE_DATABASE   = var.dedup_firestore_database
    FS2SPLIT_DEDUP_ON_STORE_ERROR = var.dedup_on_store_error
    # Saves a metadata-server round trip on the first claim.
    GOOGLE_CLOUD_PROJECT = var.project_id
  } : {}
}

resource "google_project_service" "firestore" {
  count = local.dedup_enabled ? 1 : 0

  project = var.project_id
  service = "firestore.googleapis.com"
  # Other applications of the project may use Firestore too.
  disable_on_destroy = false
}

resource "google_firestore_database" "dedup" {
  count = local.dedup_enabled && var.dedup_firestore_location != null ? 1 : 0

  project     = var.project_id
  name        = var.dedup_firestore_database
  location_id = var.dedup_firestore_location
  type        = "FIRESTORE_NATIVE"

  depends_on = [google_project_service.firestore]
}

# The TTL policy: Firestore deletes records whose expires_at (a timestamp) has passed, typically within
# a day. fs2split checks expiry itself; this only keeps the collection from growing.
resource "google_firestore_field" "dedup_ttl" {
  count = local.dedup_enabled ? 1 : 0

  project    = var.project_id
  database   = var.dedup_firestore_database
  collection = local.dedup_collection
  field      = "expires_at"

  ttl_config {}
  # No single-field indexes on a TTL timestamp: they would only add write cost and hotspots.
  index_config {}

  depends_on = [google_project_service.firestore, google_firestore_database.dedup]
}

# roles/datastore.user cannot be narrowed to one collection; the function's own account holds it.
resource "google_project_iam_member" "dedup" {
  count = local.dedup_enabled ? 1 : 0

  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.function.email}"
}

output "dedup_collection" {
  description = "The shared dedup collection (null when dedup_store is memory)."
  value       = local.dedup_enabled ? local.dedup_collection : null
}
