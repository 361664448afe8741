"""The Serverless Framework (osls) configurations, packaged and deployed offline.

Each packaging run works in a copy of the repository (node_modules linked in), so its ``.serverless``
never meets a developer's. Deploys go to a stub ``gcloud`` that records its arguments: no credentials,
no network except PyPI for the Lambda's dependencies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVERLESS_BIN = ROOT / "node_modules" / ".bin" / "serverless"
CFN_LINT = ROOT / ".venv-infra" / "bin" / "cfn-lint"
_CLEAN_PREFIXES = ("SPLIT_", "FULLSTORY_", "FS2SPLIT_", "GOOGLE_", "AWS_", "CLOUDSDK_", "SLS_")
_COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv*", "node_modules", ".serverless", "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache",
    ".hypothesis", ".terraform", "dist", "build",
)  # fmt: skip

SPLIT_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:fs2split/split-api-key-AbCdEf"
RUNTIME_EXCLUDED = {"functions-framework", "google-cloud-secret-manager", "google-auth", "boto3"}


def require_tool(path: Path, how: str) -> None:
    """Missing tooling fails in CI and skips, loudly, elsewhere."""
    if path.exists():
        return
    message = f"{path.relative_to(ROOT)} is missing: {how}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(f"SKIPPED, NOT TESTED: {message}")


def base_env(**extra: str) -> dict[str, str]:
    """The machine's environment without any setting, secret or cloud configuration, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CLEAN_PREFIXES) and k != "LOG_LEVEL"}
    # The google plugin's auth library probes the GCE metadata server; where something answers that address
    # with a 403, it prints a MetadataLookupWarning at random. A closed loopback port is "no metadata server".
    env["GCE_METADATA_HOST"] = "127.0.0.1:9"
    env.update(extra)
    return env


def service_copy(destination: Path) -> Path:
    """The repository as a deployer has it, plus files that must never ship."""
    shutil.copytree(ROOT, destination, ignore=_COPY_IGNORE)
    (destination / "node_modules").symlink_to(ROOT / "node_modules", target_is_directory=True)
    (destination / "SPLIT_API_KEY").write_text("legacy key file beside main.py\n")
    (destination / ".env").write_text("SPLIT_API_KEY=local\n")
    mapping = destination / "fs2split.yaml"  # the optional mapping beside main.py, which must ship
    if not mapping.exists():
        mapping.write_text('drop: ["debug_*"]\n')
    return destination


def serverless(service: Path, *args: str, env: Mapping[str, str], timeout: float = 180) -> str:
    result = subprocess.run(
        [str(service / "node_modules" / ".bin" / "serverless"), *args],
        cwd=service,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"serverless {' '.join(args)} failed:\n{output}"
    return output


def python_sources() -> set[str]:
    """What the function's code is: main.py, every file of the fs2split package and the mapping beside them."""
    package = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "fs2split").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}
    }
    return {"main.py", "fs2split.yaml", *package}


def pins(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            found[name.strip().lower()] = version.strip()
    return found


@pytest.fixture(scope="module", autouse=True)
def node_modules() -> None:
    require_tool(SERVERLESS_BIN, "run `npm ci` (./dev test does)")


# --- pins ---------------------------------------------------------------------------------------------------


def test_lambda_requirements_are_the_runtime_pins_minus_what_lambda_does_not_need() -> None:
    runtime = pins(ROOT / "requirements.txt")
    lambda_ = pins(ROOT / "requirements-aws.txt")

    assert {name: runtime.get(name) for name in lambda_} == lambda_, "a pin drifted from requirements.txt"
    assert set(lambda_) == set(runtime) - RUNTIME_EXCLUDED


def test_npm_pins_one_osls_for_every_plugin() -> None:
    manifest = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    dev = manifest["devDependencies"]

    assert manifest["private"] is True
    assert re.fullmatch(r"4\.\d+\.\d+", dev["osls"]), "osls is pinned to an exact 4.x release"
    assert dev["serverless-google-cloudfunctions"] == "4.6.0"
    assert re.fullmatch(r"\^?6\.\d+\.\d+", dev["serverless-python-requirements"])
    assert re.fullmatch(r"13\.10\.\d+", dev["serverless-offline"])
    # The plugins' peer dependency on `serverless` resolves to the same osls, not to a second framework.
    assert manifest["overrides"]["serverless"] == f"npm:osls@{dev['osls']}"
    installed = lock["packages"]["node_modules/serverless"]
    assert installed["name"] == "osls"
    assert installed["version"] == dev["osls"]


# --- deploy/settings.js: what reaches the function from the deployer's environment --------------------------


def settings(function: str, env: Mapping[str, str]) -> Any:
    script = (
        "const s = require(process.argv[1]);"
        "process.stdout.write(JSON.stringify(s[process.argv[2]](JSON.parse(process.argv[3]))));"
    )
    result = subprocess.run(
        ["node", "-e", script, str(ROOT / "deploy" / "settings.js"), function, json.dumps(dict(env))],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode:
        raise ValueError(result.stderr)
    return json.loads(result.stdout)


def test_settings_forward_plain_settings_but_never_secret_values_or_deploy_settings() -> None:
    env = {
        "SPLIT_TRAFFIC_TYPE": "account",
        "LOG_LEVEL": "DEBUG",
        "FS2SPLIT_EVENT_TYPE_MAP": '{"a": "b"}',
        "FS2SPLIT_DRY_RUN": "",
        "FS2SPLIT_GCP_SERVICE_ACCOUNT": "sa@p.iam.gserviceaccount.com",
        "FS2SPLIT_AWS_SPLIT_API_KEY_SECRET": SPLIT_ARN,
        "SPLIT_API_KEY": "plaintext",
        "FULLSTORY_WEBHOOK_SECRET": "plaintext",
        "HOME": "/root",
    }

    assert settings("plainEnvironment", env) == {
        "FS2SPLIT_EVENT_TYPE_MAP": '{"a": "b"}',
        "LOG_LEVEL": "DEBUG",
        "SPLIT_TRAFFIC_TYPE": "account",
    }
    assert settings("awsEnvironmentFrom", env) == {
        "FS2SPLIT_EVENT_TYPE_MAP": '{"a": "b"}',
        "LOG_LEVEL": "DEBUG",
        "SPLIT_TRAFFIC_TYPE": "account",
        "SPLIT_API_KEY_SECRET": SPLIT_ARN,
    }


def test_settings_gcp_references_become_the_google_provider_secrets_layout() -> None:
    env = {
        "FS2SPLIT_GCP_SPLIT_API_KEY_SECRET": "projects/p1/secrets/split-key/versions/4",
        "FS2SPLIT_GCP_FULLSTORY_API_KEY_SECRET": "fs-key:latest",
    }

    assert settings("gcpSecretsFrom", env) == {
        "SPLIT_API_KEY": {"projectId": "p1", "secret": "split-key", "version": "4"},
        "FULLSTORY_API_KEY": {"secret": "fs-key", "version": "latest"},
    }


@pytest.mark.parametrize(
    ("function", "variable", "value"),
    [
        ("gcpSecretsFrom", "FS2SPLIT_GCP_SPLIT_API_KEY_SECRET", "split-key"),
        ("gcpSecretsFrom", "FS2SPLIT_GCP_SPLIT_API_KEY_SECRET", "projects/p/secrets/s"),
        ("awsSecretStatementsFrom", "FS2SPLIT_AWS_SPLIT_API_KEY_SECRET", "arn:aws:s3:::not-a-secret"),
        ("awsSecretStatementsFrom", "FS2SPLIT_AWS_SPLIT_API_KEY_SECRET", "has spaces"),
    ],
)
def test_settings_refuse_a_malformed_reference_naming_the_variable(function: str, variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        settings(function, {variable: value})


def test_settings_grant_no_secret_access_when_no_secret_is_configured() -> None:
    assert settings("awsSecretStatementsFrom", {"FS2SPLIT_AWS_SECRETS_KMS_KEY_ARN": "arn:aws:kms:x"}) == []


# --- Google Cloud Functions 2nd gen -------------------------------------------------------------------------


@dataclass
class GcpRun:
    service: Path
    calls: list[list[str]]
    output: str


def stub_gcloud(directory: Path) -> Path:
    """A `gcloud` that appends its argv to calls.jsonl and answers `describe` with a run.app URL."""
    directory.mkdir()
    log = directory / "calls.jsonl"
    script = directory / "gcloud"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "if sys.argv[1:3] == ['functions', 'describe']:\n"
        "    print('https://fs2split-abc123-uc.a.run.app')\n"
    )
    script.chmod(0o755)
    return log


def gcloud_run(tmp: Path, command: str, **env: str) -> GcpRun:
    service = service_copy(tmp / "service")
    log = stub_gcloud(tmp / "bin")
    environment = base_env(GOOGLE_CLOUD_PROJECT="demo-project", **env)
    environment["PATH"] = f"{log.parent}{os.pathsep}{environment.get('PATH', '')}"
    output = serverless(service, *command.split(), env=environment)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return GcpRun(service, calls, output)


def flags(argv: list[str]) -> dict[str, str | bool]:
    parsed: dict[str, str | bool] = {}
    for arg in argv:
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            parsed[name] = value if eq else True
    return parsed


def files_in(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def gcp_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = gcloud_run(tmp_path_factory.mktemp("gcp-package"), "package", FS2SPLIT_GCP_MAX_INSTANCES="50")
    assert run.calls == [], "packaging must not call gcloud"
    # python312 and the gcpGen2 settings pass the schema: configValidationMode "warn" is only a safety net.
    assert "warning" not in run.output.lower(), run.output
    return run.service / ".serverless"


def test_gcp_package_holds_main_py_the_package_and_requirements_only(gcp_package: Path) -> None:
    with zipfile.ZipFile(gcp_package / "fs2split.zip") as archive:
        names = {name for name in archive.namelist() if not name.endswith("/")}

    assert names == python_sources() | {"requirements.txt"}


def test_gcp_package_is_built_offline_for_python312(gcp_package: Path) -> None:
    # The google plugin still writes its (unused) Deployment Manager template: a cheap view of the config.
    template = (gcp_package / "configuration-template-update.yml").read_text()

    assert "runtime: python312" in template
    assert "timeout: 15s" in template
    assert "availableMemoryMb: 256" in template
    assert "entryPoint: fs2split" in template


@pytest.fixture(scope="module")
def gcp_deploy(tmp_path_factory: pytest.TempPathFactory) -> GcpRun:
    return gcloud_run(
        tmp_path_factory.mktemp("gcp-deploy"),
        "deploy",
        GOOGLE_CLOUD_REGION="europe-west1",
        FS2SPLIT_GCP_SPLIT_API_KEY_SECRET="split-api-key:3",
        FS2SPLIT_GCP_SPLIT_IMPRESSIONS_TOKEN_SECRET="projects/shared/secrets/fme-token/versions/1",
        FS2SPLIT_EVENT_TYPE_MAP='{"Product Added": "product_added", "Order": "order"}',
        SPLIT_TRAFFIC_TYPE="account",
        SPLIT_API_KEY="plaintext-value-in-the-deployers-shell",
    )


def test_gcp_deploy_creates_a_2nd_gen_http_function_with_gcloud(gcp_deploy: GcpRun) -> None:
    deploy, describe = gcp_deploy.calls  # and nothing else: no Deployment Manager, no 1st-gen API

    assert deploy[:3] == ["functions", "deploy", "fs2split-dev-fs2split"]
    assert {
        key: value
        for key, value in flags(deploy).items()
        if key not in {"source", "env-vars-file", "set-secrets", "update-labels"}
    } == {
        "gen2": True,
        "region": "europe-west1",
        "project": "demo-project",
        "runtime": "python312",
        "entry-point": "fs2split",
        "trigger-http": True,
        "allow-unauthenticated": True,
        "memory": "256Mi",
        "timeout": "15s",
        "ingress-settings": "all",
        "max-instances": "20",
        "quiet": True,
    }
    assert describe[:3] == ["functions", "describe", "fs2split-dev-fs2split"]
    assert "--format=value(serviceConfig.uri)" in describe


def test_gcp_deploy_uploads_exactly_the_package(gcp_deploy: GcpRun) -> None:
    source = Path(str(flags(gcp_deploy.calls[0])["source"]))

    assert files_in(source) == python_sources() | {"requirements.txt"}


def test_gcp_deploy_injects_secrets_by_reference_and_never_their_values(gcp_deploy: GcpRun) -> None:
    deploy = flags(gcp_deploy.calls[0])
    env_file = Path(str(deploy["env-vars-file"])).read_text()

    assert deploy["set-secrets"] == (
        "SPLIT_API_KEY=projects/demo-project/secrets/split-api-key:3,"
        "SPLIT_IMPRESSIONS_TOKEN=projects/shared/secrets/fme-token:1"
    )
    # Values with commas survive: the environment goes through a YAML file, not --set-env-vars.
    assert env_file.splitlines() == [
        'FS2SPLIT_EVENT_TYPE_MAP: "{\\"Product Added\\": \\"product_added\\", \\"Order\\": \\"order\\"}"',
        'SPLIT_TRAFFIC_TYPE: "account"',
    ]
    assert "plaintext-value" not in env_file + " ".join(gcp_deploy.calls[0])


def test_gcp_deploy_prints_the_webhook_urls_to_paste(gcp_deploy: GcpRun) -> None:
    assert "https://fs2split-abc123-uc.a.run.app/fullstory" in gcp_deploy.output
    assert "https://fs2split-abc123-uc.a.run.app/split/impressions?token=<SPLIT_IMPRESSIONS_TOKEN>" in (
        gcp_deploy.output
    )


def test_gcp_deploy_in_reference_mode_passes_secret_versions_as_name_secret(tmp_path: Path) -> None:
    run = gcloud_run(
        tmp_path,
        "deploy --stage prod",
        FS2SPLIT_GCP_SECRETS_MODE="reference",
        FS2SPLIT_GCP_SERVICE_ACCOUNT="fs2split@demo-project.iam.gserviceaccount.com",
        FS2SPLIT_GCP_FULLSTORY_WEBHOOK_SECRET_SECRET="fullstory-webhook-secret:2",
    )
    deploy = run.calls[0]
    parsed = flags(deploy)

    assert deploy[2] == "fs2split-prod-fs2split"
    assert parsed["service-account"] == "fs2split@demo-project.iam.gserviceaccount.com"
    assert parsed["clear-secrets"] is True
    assert "set-secrets" not in parsed
    assert Path(str(parsed["env-vars-file"])).read_text() == (
        'FULLSTORY_WEBHOOK_SECRET_SECRET: "projects/demo-project/secrets/fullstory-webhook-secret/versions/2"\n'
    )


def test_gcp_remove_deletes_the_2nd_gen_function(tmp_path: Path) -> None:
    run = gcloud_run(tmp_path, "remove")

    assert run.calls == [
        [
            "functions",
            "delete",
            "fs2split-dev-fs2split",
            "--gen2",
            "--region=us-central1",
            "--project=demo-project",
            "--quiet",
        ]
    ]


# --- AWS Lambda behind a Function URL ----------------------------------------------------------------------


@dataclass
class AwsPackage:
    directory: Path
    template: dict[str, Any]

    def resources(self, kind: str) -> dict[str, Any]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == kind}

    def one(self, kind: str) -> dict[str, Any]:
        (resource,) = self.resources(kind).values()
        return resource["Properties"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def aws_package(tmp_path_factory: pytest.TempPathFactory) -> AwsPackage:
    service = service_copy(tmp_path_factory.mktemp("aws") / "service")
    env = base_env(
        FS2SPLIT_AWS_SPLIT_API_KEY_SECRET=SPLIT_ARN,
        FS2SPLIT_AWS_SPLIT_IMPRESSIONS_TOKEN_SECRET="fs2split/impressions-token",
        SPLIT_API_KEY="plaintext-value-in-the-deployers-shell",
        LOG_LEVEL="DEBUG",
    )
    serverless(service, "package", "--config", "serverless.aws.yml", env=env)
    directory = service / ".serverless"
    template = json.loads((directory / "cloudformation-template-update-stack.json").read_text())
    return AwsPackage(directory, template)


def test_aws_template_passes_cfn_lint(aws_package: AwsPackage) -> None:
    require_tool(CFN_LINT, "install requirements-infra.txt into .venv-infra (./dev test does)")
    template = aws_package.directory / "cloudformation-template-update-stack.json"

    result = subprocess.run(
        [str(CFN_LINT), "--format", "parseable", str(template)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    errors = [line for line in result.stdout.splitlines() if re.search(r":E\d{4}:", line)]
    assert errors == [], result.stdout
    assert result.returncode in (0, 4, 8), result.stdout + result.stderr  # 4 warnings, 8 informational


def test_aws_function_is_python312_with_15s_and_256mb(aws_package: AwsPackage) -> None:
    function = aws_package.one("AWS::Lambda::Function")

    assert function["Runtime"] == "python3.12"
    assert function["Handler"] == "main.lambda_handler"
    assert function["Timeout"] == 15
    assert function["MemorySize"] == 256


def test_aws_function_url_is_public_with_both_permissions(aws_package: AwsPackage) -> None:
    assert aws_package.one("AWS::Lambda::Url")["AuthType"] == "NONE"
    resources = aws_package.resources("AWS::Lambda::Permission").values()
    permissions = {p["Properties"]["Action"]: p["Properties"] for p in resources}

    assert permissions["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"] == "NONE"
    assert permissions["lambda:InvokeFunction"]["InvokedViaFunctionUrl"] is True
    assert {p["Principal"] for p in permissions.values()} == {"*"}


def test_aws_logs_are_kept_30_days(aws_package: AwsPackage) -> None:
    assert aws_package.one("AWS::Logs::LogGroup")["RetentionInDays"] == 30


def test_aws_role_reads_only_the_configured_secrets(aws_package: AwsPackage) -> None:
    role = aws_package.one("AWS::IAM::Role")
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    secret_statements = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]

    assert len(secret_statements) == 1
    assert secret_statements[0]["Action"] == ["secretsmanager:GetSecretValue"]
    assert secret_statements[0]["Resource"] == [
        SPLIT_ARN,
        {
            "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
            ":secret:fs2split/impressions-token-??????"
        },
    ]
    assert not any("*" in json.dumps(s.get("Resource")) for s in secret_statements)


def test_aws_environment_holds_references_not_values(aws_package: AwsPackage) -> None:
    variables = aws_package.one("AWS::Lambda::Function")["Environment"]["Variables"]

    assert variables == {
        "LOG_LEVEL": "DEBUG",
        "SPLIT_API_KEY_SECRET": SPLIT_ARN,
        "SPLIT_IMPRESSIONS_TOKEN_SECRET": "fs2split/impressions-token",
    }


def test_aws_shipped_stack_has_no_local_http_api(aws_package: AwsPackage) -> None:
    # serverless-offline's httpApi route exists only inside `serverless offline` (see the e2e test below).
    kinds = {resource["Type"] for resource in aws_package.template["Resources"].values()}
    state = json.loads((aws_package.directory / "serverless-state.json").read_text())

    assert not {kind for kind in kinds if kind.startswith(("AWS::ApiGateway", "AWS::ApiGatewayV2"))}
    assert state["service"]["functions"]["fs2split"].get("events", []) == []


def test_local_http_api_plugin_hooks_only_the_offline_command() -> None:
    script = (
        "const P = require(process.argv[1]);"
        "const p = new P({service: {getAllFunctions: () => [], getFunction: () => ({})}});"
        "process.stdout.write(JSON.stringify(Object.keys(p.hooks)));"
    )
    plugin = str(ROOT / "deploy" / "serverless-local-http-api")
    result = subprocess.run(["node", "-e", script, plugin], capture_output=True, text=True, check=True)

    assert sorted(json.loads(result.stdout)) == ["before:offline:start", "before:offline:start:init"]


def test_aws_zip_bundles_main_the_package_and_the_lambda_requirements(aws_package: AwsPackage) -> None:
    with zipfile.ZipFile(aws_package.directory / "fs2split.zip") as archive:
        names = set(archive.namelist())
    top = {name.split("/", 1)[0] for name in names}

    assert python_sources() <= names
    assert {"requests", "urllib3", "yaml", "cachetools", "certifi", "idna", "charset_normalizer"} <= top
    # Wheels for the Lambda runtime (CPython 3.12, x86_64), whatever Python ran pip.
    assert any(re.fullmatch(r"yaml/_yaml\.cpython-312-x86_64-linux-gnu\.so", n) for n in names)
    assert not top & {"boto3", "botocore", "functions_framework", "flask", "google", "grpc", "tests"}
    assert not top & {"node_modules", "deploy", "terraform", "docs", "SPLIT_API_KEY", ".env", "package.json"}
    assert not [n for n in names if n.startswith("serverless") or "__pycache__" in n or n.endswith(".pyc")]


def python312() -> list[str] | None:
    """A CPython 3.12 to run the Lambda zip the way the runtime would, if this machine has one."""
    pyenv = sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
    candidates = [["python3.12"], *[[str(path)] for path in pyenv]]
    for command in candidates:
        try:
            subprocess.run([*command, "--version"], capture_output=True, check=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        return command
    return None


def test_aws_zip_answers_healthz_on_python312_with_nothing_but_its_contents(
    aws_package: AwsPackage, tmp_path: Path
) -> None:
    interpreter = python312()
    if interpreter is None:
        pytest.skip("SKIPPED, NOT TESTED: no python3.12 on this machine to run the Lambda zip with")
    with zipfile.ZipFile(aws_package.directory / "fs2split.zip") as archive:
        archive.extractall(tmp_path / "task")
    event = json.loads((ROOT / "tests" / "events" / "lambda-function-url.json").read_text())
    event.update(rawPath="/healthz", rawQueryString="", body="", isBase64Encoded=False)
    event["requestContext"]["http"].update(method="GET", path="/healthz")
    code = (
        "import json, sys\n"
        "sys.path.insert(0, '.')\n"
        "import main\n"
        "response = main.lambda_handler(json.loads(sys.argv[1]), None)\n"
        "print(json.dumps(response))\n"
    )

    # -I -S: no site-packages, no user site, no PYTHON* variables: only the zip and the standard library.
    result = subprocess.run(
        [*interpreter, "-I", "-S", "-c", code, json.dumps(event)],
        cwd=tmp_path / "task",
        env=base_env(FS2SPLIT_DRY_RUN="1"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout.splitlines()[-1])
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["service"] == "fs2split"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def offline(tmp_path: Path) -> Iterator[str]:
    """`serverless offline` for the AWS config, in its own process group so every child stops with it."""
    service = service_copy(tmp_path / "service")
    http_port, lambda_port = free_port(), free_port()
    env = base_env(FS2SPLIT_DRY_RUN="1")
    # serverless-offline runs the handler with `python3` from PATH: the project's virtualenv has its deps.
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    command = [str(SERVERLESS_BIN), "offline", "--config", "serverless.aws.yml"]
    command += ["--httpPort", str(http_port), "--lambdaPort", str(lambda_port), "--noTimeout"]
    log = (tmp_path / "offline.log").open("w")
    process = subprocess.Popen(
        command, cwd=service, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield f"http://127.0.0.1:{http_port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        log.close()


@pytest.mark.e2e
def test_serverless_offline_serves_the_function_locally(offline: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{offline}/healthz", timeout=10) as response:
                status, body = response.status, json.loads(response.read())
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)

    assert status == 200
    assert body["service"] == "fs2split"
