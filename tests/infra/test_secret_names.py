"""Every secret fs2split reads can be deployed as a secret, and only as one: the deploy helper for
serverless passes its reference, and both Terraform modules accept it as a secret and refuse it as a
plain environment value."""

from __future__ import annotations

import pytest

from fs2split.config import keys
from tests.infra.test_serverless import settings
from tests.infra.test_terraform import MODULES, blocks

SECRET_NAMES = sorted(getattr(keys, name) for name in keys.__all__ if name.isupper())
AWS_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:fs2split/stream-token-AbCdEf"


def test_the_stream_token_is_one_of_the_secrets() -> None:
    assert "FULLSTORY_STREAM_TOKEN" in SECRET_NAMES


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_serverless_passes_a_secret_reference_for_every_secret_name(name: str) -> None:
    env = {f"FS2SPLIT_AWS_{name}_SECRET": AWS_ARN, f"FS2SPLIT_GCP_{name}_SECRET": "fs-secret:3", name: "plaintext"}

    assert settings("awsEnvironmentFrom", env) == {f"{name}_SECRET": AWS_ARN}
    assert settings("gcpSecretsFrom", env) == {name: {"secret": "fs-secret", "version": "3"}}


@pytest.mark.parametrize("cloud", sorted(MODULES))
@pytest.mark.parametrize("name", SECRET_NAMES)
def test_terraform_accepts_every_secret_name_as_a_secret_and_refuses_it_as_environment(cloud: str, name: str) -> None:
    variables = blocks(MODULES[cloud], "variable")
    secret_input = variables["secrets" if cloud == "gcp" else "secret_arns"]
    environment = variables["environment"]

    assert any(f'"{name}"' in rule["condition"] for rule in secret_input["validation"])
    assert any(f'"{name}"' in rule["condition"] for rule in environment["validation"])
