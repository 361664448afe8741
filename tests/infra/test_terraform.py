"""The Terraform modules and examples, checked offline: structure through python-hcl2, then terraform fmt and
checkov. (`terraform init`/`validate` need the registry, which this project's machines cannot reach.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
MODULES = {name: TERRAFORM / "modules" / name for name in ("gcp", "aws")}
EXAMPLES = {name: TERRAFORM / "examples" / name for name in ("gcp", "aws")}
ALL_ROOTS = [*MODULES.values(), *EXAMPLES.values()]
CHECKOV = ROOT / ".venv-infra" / "bin" / "checkov"

# Findings accepted on purpose, each skipped inline beside its resource with the reason (see the module READMEs).
ACCEPTED_FINDINGS = {
    "CKV_GCP_102",  # allUsers invoker: a public webhook receiver
    "CKV_GCP_124",  # ingress ALLOW_ALL: same
    "CKV_GCP_62",  # access logs on the source bucket: it holds only hash-named build archives
    "CKV_GCP_78",  # versioning on that bucket: same
    "CKV_AWS_258",  # Function URL auth NONE: a public webhook receiver
    "CKV_AWS_301",  # public lambda permissions: same
    "CKV_AWS_116",  # DLQ: synchronous invocations only
    "CKV_AWS_117",  # VPC: calls only public APIs
    "CKV_AWS_173",  # environment KMS: holds no secret value
    "CKV_AWS_272",  # code signing: built from source by Terraform
    "CKV_AWS_338",  # one-year log retention: 30 days by default, configurable
    "CKV_AWS_149",  # example secrets on the AWS managed key, CMK optional
    "CKV2_AWS_57",  # automatic rotation: third-party keys are rotated by hand
    "CKV_AWS_28",  # dedup table point-in-time recovery: short-lived keys only, configurable
    "CKV_AWS_119",  # dedup table CMK: no personal data, AWS owned key by default, configurable
}


# --- python-hcl2 8.x, normalised -------------------------------------------------------------------------


def unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def normalise(node: Any) -> Any:
    """Drop hcl2's `__is_block__`/`__comments__` entries and the quotes it keeps around keys and strings."""
    if isinstance(node, dict):
        return {unquote(k): normalise(v) for k, v in node.items() if not (k.startswith("__") and k.endswith("__"))}
    if isinstance(node, list):
        return [normalise(item) for item in node]
    if isinstance(node, str):
        return unquote(node)
    return node


@cache
def parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return normalise(hcl2.load(handle))  # type: ignore[no-any-return]


def blocks(directory: Path, kind: str) -> dict[str, Any]:
    """`variable`/`output`/`module` blocks of every .tf file in a directory, by name."""
    found: dict[str, Any] = {}
    for path in sorted(directory.glob("*.tf")):
        for block in parse(path).get(kind, []):
            found.update(block)
    return found


def resources(directory: Path, kind: str = "resource", *, skip: tuple[str, ...] = ()) -> dict[tuple[str, str], Any]:
    """`resource` (or `data`) blocks of a directory, by (type, name); files named in ``skip`` left out."""
    found: dict[tuple[str, str], Any] = {}
    for path in sorted(p for p in directory.glob("*.tf") if p.name not in skip):
        for block in parse(path).get(kind, []):
            for type_, named in block.items():
                for name, body in named.items():
                    found[(type_, name)] = body
    return found


def one(directory: Path, type_: str, kind: str = "resource") -> Any:
    """The direct-mode resource of a type: queue.tf's second function, log group and invoker are checked apart
    (tests/infra/test_queue_infra.py)."""
    (body,) = [body for (t, _), body in resources(directory, kind, skip=("queue.tf",)).items() if t == type_]
    return body


def all_types(directory: Path) -> set[str]:
    return {type_ for type_, _ in resources(directory)} | {type_ for type_, _ in resources(directory, "data")}


def first(value: Any) -> Any:
    """Nested blocks come as one-element lists."""
    return value[0] if isinstance(value, list) else value


# --- conventions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", ALL_ROOTS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_each_folder_has_the_standard_files(directory: Path) -> None:
    expected = {"main.tf", "variables.tf", "outputs.tf", "versions.tf"}
    if directory.parent.name == "modules":
        expected.add("README.md")
    assert expected <= {p.name for p in directory.iterdir()}


@pytest.mark.parametrize("directory", ALL_ROOTS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_variable_is_typed_and_described(directory: Path) -> None:
    variables = blocks(directory, "variable")

    assert variables
    for name, body in variables.items():
        assert body.get("type"), f"variable {name} has no type"
        assert len(body.get("description", "")) > 10, f"variable {name} has no description"


@pytest.mark.parametrize("directory", ALL_ROOTS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_output_is_described(directory: Path) -> None:
    outputs = blocks(directory, "output")

    assert {"fullstory_webhook_url", "impressions_webhook_url", "url"} <= set(outputs)
    for name, body in outputs.items():
        assert len(body.get("description", "")) > 10, f"output {name} has no description"


@pytest.mark.parametrize("directory", ALL_ROOTS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_versions_pin_terraform_and_bound_every_provider(directory: Path) -> None:
    (settings,) = parse(directory / "versions.tf")["terraform"]

    assert settings["required_version"].startswith(">=")
    (providers,) = settings["required_providers"]
    for name, requirement in providers.items():
        assert requirement["source"] == f"hashicorp/{name}"
        assert re.fullmatch(r">= [\d.]+, < [\d.]+", requirement["version"]), f"{name} needs a lower and upper bound"


@pytest.mark.parametrize(
    ("module", "constrained"),
    [
        ("gcp", {"project_id", "name", "runtime", "timeout_seconds", "secrets", "secrets_mode", "secret_versions"}),
        ("aws", {"name", "runtime", "architecture", "timeout", "log_retention_days", "secret_arns"}),
    ],
)
def test_constrained_variables_validate(module: str, constrained: set[str]) -> None:
    variables = blocks(MODULES[module], "variable")

    # environment refuses secret names: a value there would sit in plain text in state and in the console.
    assert {name for name, body in variables.items() if body.get("validation")} >= constrained | {"environment"}


@pytest.mark.parametrize("module", MODULES)
def test_module_readme_documents_every_input_and_output(module: str) -> None:
    readme = (MODULES[module] / "README.md").read_text()

    for kind in ("variable", "output"):
        for name in blocks(MODULES[module], kind):
            assert f"| `{name}` |" in readme, f"README.md of {module} does not document {kind} {name}"


@pytest.mark.parametrize("cloud", EXAMPLES)
def test_example_calls_its_module_from_the_repository(cloud: str) -> None:
    (module,) = blocks(EXAMPLES[cloud], "module").values()

    assert module["source"] == f"../../modules/{cloud}"
    assert module["source_dir"] == "${path.root}/../../.."
    assert (EXAMPLES[cloud] / "../../..").resolve() == ROOT
    assert set(blocks(MODULES[cloud], "variable")) >= set(module) - {"source", "depends_on"}
    required = {name for name, body in blocks(MODULES[cloud], "variable").items() if "default" not in body}
    assert required <= set(module), f"example misses required inputs {required - set(module)}"


@pytest.mark.parametrize("cloud", EXAMPLES)
def test_example_passes_the_delivery_and_dedup_choices_through_and_shows_the_dead_letters(cloud: str) -> None:
    # The queue and shared-dedup modes are one variable away in the example, with what redrive needs as an output.
    (module,) = blocks(EXAMPLES[cloud], "module").values()
    variables = blocks(EXAMPLES[cloud], "variable")
    dead_letters = "dead_letter_queue_url" if cloud == "aws" else "dead_letter_subscription"

    assert (module["delivery"], module["dedup_store"]) == ("${var.delivery}", "${var.dedup_store}")
    assert (variables["delivery"]["default"], variables["dedup_store"]["default"]) == ("direct", "memory")
    assert blocks(EXAMPLES[cloud], "output")[dead_letters]["value"] == f"${{module.fs2split.{dead_letters}}}"


@pytest.mark.parametrize("directory", ALL_ROOTS, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_no_secret_value_can_reach_state(directory: Path) -> None:
    types = all_types(directory)

    assert "google_secret_manager_secret_version" not in types
    assert "aws_secretsmanager_secret_version" not in types
    for body in resources(directory).values():
        assert not {"secret_data", "secret_string", "secret_binary"} & set(body)


def test_timeouts_exceed_the_retry_budget_and_memory_is_256() -> None:
    gcp, aws = blocks(MODULES["gcp"], "variable"), blocks(MODULES["aws"], "variable")

    assert (gcp["timeout_seconds"]["default"], gcp["available_memory"]["default"]) == (15, "256Mi")
    assert (aws["timeout"]["default"], aws["memory_size"]["default"]) == (15, 256)
    assert gcp["runtime"]["default"] == "python312"
    assert aws["runtime"]["default"] == "python3.12"


@pytest.mark.parametrize(("module", "files"), [("gcp", '["main.py", "requirements.txt"]'), ("aws", '["main.py"]')])
def test_archive_holds_only_the_function_code(module: str, files: str) -> None:
    (local_values,) = parse(MODULES[module] / "main.tf")["locals"]
    listed = local_values["source_files" if module == "gcp" else "code_files"]
    data = resources(MODULES[module], "data")
    archive = data[("archive_file", "source" if module == "gcp" else "code")]

    assert first(archive["dynamic"])["source"]["for_each"] in {"${local.source_files}", "${local.code_files}"}
    assert files in listed
    assert 'fileset(var.source_dir, "fs2split/**")' in listed
    assert '!strcontains(f, "__pycache__")' in listed
    assert '"${var.source_dir}/fs2split.yaml"' in listed  # the optional mapping ships when present


# --- GCP module -----------------------------------------------------------------------------------------


def test_gcp_function_is_2nd_gen_from_a_hash_named_archive() -> None:
    module = MODULES["gcp"]
    function = one(module, "google_cloudfunctions2_function")
    build, service = first(function["build_config"]), first(function["service_config"])
    storage = first(first(build["source"])["storage_source"])

    assert build["entry_point"] == "fs2split"
    assert storage["object"] == "${google_storage_bucket_object.source.name}"
    assert "output_md5" in one(module, "google_storage_bucket_object")["name"]
    assert service["service_account_email"] == "${google_service_account.function.email}"
    assert service["ingress_settings"] == "ALLOW_ALL"


def test_gcp_function_account_can_read_each_secret() -> None:
    module = MODULES["gcp"]
    access = one(module, "google_secret_manager_secret_iam_member")

    assert access["for_each"] == "${google_secret_manager_secret.this}"
    assert access["role"] == "roles/secretmanager.secretAccessor"
    assert access["member"] == "serviceAccount:${google_service_account.function.email}"
    # Cloud Run checks secret access when a revision starts: grant before deploying.
    function = one(module, "google_cloudfunctions2_function")
    assert "${google_secret_manager_secret_iam_member.function}" in function["depends_on"]


def test_gcp_secrets_are_injected_pinned_or_passed_as_references() -> None:
    module = MODULES["gcp"]
    service = first(one(module, "google_cloudfunctions2_function")["service_config"])
    (injected,) = service["dynamic"]
    main_tf = (module / "main.tf").read_text()

    assert injected["secret_environment_variables"]["for_each"] == "${local.injected_secrets}"
    assert "local.secret_references" in service["environment_variables"]
    assert 'var.secrets_mode == "env"' in main_tf
    assert '"${name}_SECRET" => "projects/${var.project_id}/secrets/' in main_tf


def test_gcp_cloud_run_service_is_publicly_invokable() -> None:
    invoker = one(MODULES["gcp"], "google_cloud_run_service_iam_member")

    assert invoker["role"] == "roles/run.invoker"
    assert invoker["member"] == "allUsers"
    assert invoker["service"] == "${google_cloudfunctions2_function.this.name}"


def test_gcp_source_bucket_is_private() -> None:
    bucket = one(MODULES["gcp"], "google_storage_bucket")

    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"


# --- AWS module -----------------------------------------------------------------------------------------


def test_aws_function_redeploys_on_code_change() -> None:
    function = one(MODULES["aws"], "aws_lambda_function")

    assert function["handler"] == "main.lambda_handler"
    assert function["filename"] == "${data.archive_file.code.output_path}"
    assert function["source_code_hash"] == "${data.archive_file.code.output_base64sha256}"
    assert function["layers"] == ["${aws_lambda_layer_version.dependencies.arn}"]


def test_aws_function_url_is_public_with_both_permissions() -> None:
    module = MODULES["aws"]
    url = one(module, "aws_lambda_function_url")
    permissions = {body["action"]: body for (t, _), body in resources(module).items() if t == "aws_lambda_permission"}

    assert url["authorization_type"] == "NONE"
    assert set(permissions) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert permissions["lambda:InvokeFunctionUrl"]["function_url_auth_type"] == "NONE"
    assert permissions["lambda:InvokeFunction"]["invoked_via_function_url"] is True
    assert "function_url_auth_type" not in permissions["lambda:InvokeFunction"]
    assert {p["principal"] for p in permissions.values()} == {"*"}


def test_aws_role_reads_only_the_named_secrets_and_writes_its_logs() -> None:
    module = MODULES["aws"]
    policy = resources(module, "data")[("aws_iam_policy_document", "permissions")]
    (logs,) = policy["statement"]
    dynamic = [first(d["statement"]["content"]) for d in policy["dynamic"]]
    (secrets,) = [s for s in dynamic if s["actions"] == ["secretsmanager:GetSecretValue"]]

    assert logs["resources"] == ["${aws_cloudwatch_log_group.this.arn}:*"]
    assert secrets["resources"] == "${sort(values(var.secret_arns))}"
    assert "*" not in json.dumps([logs["actions"], secrets["resources"]])


def test_aws_log_group_has_retention() -> None:
    module = MODULES["aws"]
    log_group = one(module, "aws_cloudwatch_log_group")

    assert log_group["name"] == "/aws/lambda/${var.name}"
    assert log_group["retention_in_days"] == "${var.log_retention_days}"
    assert blocks(module, "variable")["log_retention_days"]["default"] == 30


def test_aws_example_creates_empty_secrets_and_passes_their_arns() -> None:
    (module,) = blocks(EXAMPLES["aws"], "module").values()

    assert "aws_secretsmanager_secret" in all_types(EXAMPLES["aws"])
    assert module["secret_arns"] == "${{for name, secret in aws_secretsmanager_secret.this : name => secret.arn}}"
    assert module["dependencies_dir"] == "${path.root}/../../../dist/lambda-layer"
    assert "dist/" in (ROOT / ".gitignore").read_text().split()


# --- checkov skips are inline and justified ---------------------------------------------------------------


def test_checkov_skips_are_inline_with_a_reason() -> None:
    skips = [
        match
        for path in TERRAFORM.rglob("*.tf")
        for match in re.finditer(r"#checkov:skip=([A-Z0-9_]+):(.*)", path.read_text())
    ]

    assert skips
    for skip in skips:
        assert skip.group(1) in ACCEPTED_FINDINGS, f"unexpected skip {skip.group(1)}"
        assert len(skip.group(2).strip()) > 30, f"{skip.group(1)} needs a real reason"
    assert not [p for p in ROOT.glob(".checkov.y*ml")] + [p for p in TERRAFORM.rglob(".checkov.y*ml")]


# --- the tools ------------------------------------------------------------------------------------------


def require(tool: str | Path | None, what: str) -> str:
    if tool and Path(tool).exists():
        return str(tool)
    message = f"{what} is missing"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(f"SKIPPED, NOT TESTED: {message}")


def test_terraform_fmt_is_clean() -> None:
    terraform = require(shutil.which("terraform"), "the terraform binary")

    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_passes_with_only_the_accepted_findings_skipped() -> None:
    checkov = require(CHECKOV, ".venv-infra/bin/checkov (install requirements-infra.txt; ./dev test does)")

    # Run from the repository root: checkov would read a .checkov.yaml only from the current folder.
    result = subprocess.run(
        [checkov, "-d", "terraform", "--framework", "terraform", "--skip-download", "--output", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r["results"]["failed_checks"]]
    skipped = {c["check_id"] for r in reports for c in r["results"]["skipped_checks"]}
    assert failed == [], [(c["check_id"], c["resource"], c["file_path"]) for c in failed]
    assert [r["summary"]["parsing_errors"] for r in reports] == [0] * len(reports), "checkov could not read a file"
    assert result.returncode == 0, result.stderr
    assert skipped <= ACCEPTED_FINDINGS
    assert sum(r["summary"]["passed"] for r in reports) > 30
