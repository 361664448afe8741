# fs2split on AWS Lambda behind a Function URL. From the repository root, build the dependencies once:
#   python3 -m pip install -r requirements-aws.txt --target dist/lambda-layer/python \
#     --platform manylinux2014_x86_64 --implementation cp --python-version 3.12 --only-binary=:all: --upgrade
# then, from this folder:
#   terraform init && terraform apply
# and add the secret values (aws secretsmanager put-secret-value, see docs/deploy.md).

provider "aws" {
  region = var.region
}

# Created without a value: values are added out of band, so none is ever in Terraform state.
resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV_AWS_149:Encrypted with the AWS managed key by default; pass a customer managed key (kms_key_id here, secrets_kms_key_arn on the module) if policy requires one.
  #checkov:skip=CKV2_AWS_57:The values are third-party API keys and a webhook secret: they are rotated by hand in FullStory and FME, which no rotation Lambda can do.
  for_each = var.secrets

  name                    = "fs2split/${lower(replace(each.value, "_", "-"))}"
  description             = "fs2split ${each.value}"
  recovery_window_in_days = 7
}

module "fs2split" {
  source = "../../modules/aws"

  # The repository root: main.py and fs2split/ are taken from there.
  source_dir       = "${path.root}/../../.."
  dependencies_dir = "${path.root}/../../../dist/lambda-layer"

  secret_arns = { for name, secret in aws_secretsmanager_secret.this : name => secret.arn }
  environment = var.environment
  dedup_store = var.dedup_store
  delivery    = var.delivery
}
