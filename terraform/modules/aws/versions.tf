terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # invoked_via_function_url (the lambda:InvokeFunction permission public Function URLs need since
      # October 2025) arrived in 6.29 according to the provider's pull request.
      version = ">= 6.29, < 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4, < 3.0"
    }
  }
}
