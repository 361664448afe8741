"""serverless.aws.yml declares the shared dedup table only when FS2SPLIT_DEDUP_STORE=dynamodb asks for it,
packaged offline in a copy of the repository and linted by cfn-lint."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.test_serverless import (
    CFN_LINT,
    SERVERLESS_BIN,
    base_env,
    require_tool,
    serverless,
    service_copy,
)

TABLE = "fs2split-dedup-prod"


def package(tmp_path: Path, **env: str) -> tuple[Path, dict[str, Any]]:
    service = service_copy(tmp_path / "service")
    serverless(service, "package", "--config", "serverless.aws.yml", env=base_env(**env))
    template = service / ".serverless" / "cloudformation-template-update-stack.json"
    return template, json.loads(template.read_text())


@pytest.fixture(scope="module")
def with_dedup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    require_tool(SERVERLESS_BIN, "run `npm ci` (./dev test does)")
    return package(tmp_path_factory.mktemp("dedup"), FS2SPLIT_DEDUP_STORE="dynamodb", FS2SPLIT_DEDUP_TABLE=TABLE)


def of_type(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [resource for resource in template["Resources"].values() if resource["Type"] == kind]


def test_the_default_memory_store_declares_no_table(tmp_path: Path) -> None:
    require_tool(SERVERLESS_BIN, "run `npm ci` (./dev test does)")

    _, template = package(tmp_path)

    assert of_type(template, "AWS::DynamoDB::Table") == []
    assert of_type(template, "AWS::IAM::Policy") == []


def test_dynamodb_declares_an_on_demand_table_keyed_by_id_with_ttl_on_expires_at(
    with_dedup: tuple[Path, dict[str, Any]],
) -> None:
    (table,) = of_type(with_dedup[1], "AWS::DynamoDB::Table")
    properties = table["Properties"]

    assert properties["TableName"] == TABLE
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_function_may_use_that_table_only_with_four_item_actions(with_dedup: tuple[Path, dict[str, Any]]) -> None:
    (policy,) = of_type(with_dedup[1], "AWS::IAM::Policy")
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]

    assert policy["Properties"]["Roles"] == [{"Ref": "IamRoleLambdaExecution"}]
    assert sorted(statement["Action"]) == [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    assert statement["Resource"] == [{"Fn::GetAtt": ["DedupTable", "Arn"]}]


def test_the_function_is_told_the_store_and_the_table(with_dedup: tuple[Path, dict[str, Any]]) -> None:
    (function,) = of_type(with_dedup[1], "AWS::Lambda::Function")

    variables = function["Properties"]["Environment"]["Variables"]
    assert (variables["FS2SPLIT_DEDUP_STORE"], variables["FS2SPLIT_DEDUP_TABLE"]) == ("dynamodb", TABLE)


def test_the_template_with_the_table_passes_cfn_lint(with_dedup: tuple[Path, dict[str, Any]]) -> None:
    require_tool(CFN_LINT, "install requirements-infra.txt into .venv-infra (./dev test does)")

    result = subprocess.run(
        [str(CFN_LINT), "--format", "parseable", str(with_dedup[0])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert [line for line in result.stdout.splitlines() if re.search(r":E\d{4}:", line)] == [], result.stdout
    assert result.returncode in (0, 4, 8), result.stdout + result.stderr
