"""Shared dedup in the Terraform modules (docs/dedup.md), read through python-hcl2: off by default, and
when on, the table or collection the code expects, with only the access it needs."""

from __future__ import annotations

import re

import pytest

from fs2split.config.settings import Settings
from tests.infra.test_terraform import MODULES, blocks, parse, resources

DEDUP_RESOURCES = {
    "aws": {("aws_dynamodb_table", "dedup"), ("aws_iam_role_policy", "dedup")},
    "gcp": {
        ("google_project_service", "firestore"),
        ("google_firestore_database", "dedup"),
        ("google_firestore_field", "dedup_ttl"),
        ("google_project_iam_member", "dedup"),
    },
}


def dedup_locals(cloud: str) -> dict[str, str]:
    (values,) = parse(MODULES[cloud] / "dedup.tf")["locals"]
    return values  # type: ignore[no-any-return]


@pytest.mark.parametrize("cloud", MODULES)
def test_dedup_store_defaults_to_memory_which_creates_nothing(cloud: str) -> None:
    assert blocks(MODULES[cloud], "variable")["dedup_store"]["default"] == "memory"
    for key in DEDUP_RESOURCES[cloud]:
        assert re.match(r"\$\{local\.dedup_enabled( && .*)? \? 1 : 0\}", resources(MODULES[cloud])[key]["count"]), key
    assert dedup_locals(cloud)["dedup_environment"].endswith(": {}}")


@pytest.mark.parametrize("cloud", MODULES)
def test_the_function_environment_carries_the_settings_the_code_reads(cloud: str) -> None:
    environment = dedup_locals(cloud)["dedup_environment"]
    named = set(re.findall(r"\b(FS2SPLIT_[A-Z_]+) =", environment))

    assert "local.dedup_environment" in (MODULES[cloud] / "main.tf").read_text()
    assert named >= {"FS2SPLIT_DEDUP_STORE", "FS2SPLIT_DEDUP_TABLE", "FS2SPLIT_DEDUP_ON_STORE_ERROR"}
    # Every name is one fs2split accepts: a typo would silently leave dedup in memory.
    store = "dynamodb" if cloud == "aws" else "firestore"
    assert Settings.from_env({"FS2SPLIT_DEDUP_STORE": store}).dedup_store == store
    assert f'FS2SPLIT_DEDUP_STORE = "{store}"' in environment


def test_aws_table_is_on_demand_keyed_by_id_with_ttl_on_expires_at_and_no_pitr_by_default() -> None:
    table = resources(MODULES["aws"])[("aws_dynamodb_table", "dedup")]

    assert (table["billing_mode"], table["hash_key"]) == ("PAY_PER_REQUEST", "id")
    assert table["attribute"] == [{"name": "id", "type": "S"}]
    assert table["ttl"] == [{"enabled": True, "attribute_name": "expires_at"}]
    assert table["point_in_time_recovery"] == [{"enabled": "${var.dedup_point_in_time_recovery}"}]
    assert blocks(MODULES["aws"], "variable")["dedup_point_in_time_recovery"]["default"] is False


def test_aws_function_may_put_update_delete_and_get_on_the_dedup_table_only() -> None:
    policy = resources(MODULES["aws"], "data")[("aws_iam_policy_document", "dedup")]

    (statement,) = policy["statement"]
    assert sorted(statement["actions"]) == sorted(
        ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem"]
    )
    assert statement["resources"] == ["${aws_dynamodb_table.dedup[0].arn}"]
    attached = resources(MODULES["aws"])[("aws_iam_role_policy", "dedup")]
    assert attached["role"] == "${aws_iam_role.this.id}"


def test_gcp_enables_firestore_and_sets_a_ttl_policy_on_expires_at() -> None:
    found = resources(MODULES["gcp"])

    assert found[("google_project_service", "firestore")]["service"] == "firestore.googleapis.com"
    assert found[("google_project_service", "firestore")]["disable_on_destroy"] is False
    field = found[("google_firestore_field", "dedup_ttl")]
    assert (field["collection"], field["field"], field["ttl_config"]) == (
        "${local.dedup_collection}",
        "expires_at",
        [{}],
    )


def test_gcp_function_account_is_a_datastore_user() -> None:
    member = resources(MODULES["gcp"])[("google_project_iam_member", "dedup")]

    assert member["role"] == "roles/datastore.user"
    assert member["member"] == "serviceAccount:${google_service_account.function.email}"
