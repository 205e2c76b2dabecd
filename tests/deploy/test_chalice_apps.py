"""The five Chalice apps as ``chalice deploy`` would ship them, checked offline.

``chalice package`` builds the same deployment package ``chalice deploy`` uploads (plus a
SAM template that shows every setting), so packaging each app, then importing the package
in a clean interpreter, proves the vendored shared code is complete and carries no torch.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from spaceport.config import PipelineConfig
from spaceport.contracts.stages import JOB_STAGES, Stage
from spaceport.contracts.topology import SERVICES
from spaceport.contracts.units import UNITS, job_unit
from spaceport.unit_app import MAKE_DEPLOY_ENV, unprepared
from spaceport_infra.apps import APPS, ChaliceApp, app_named
from spaceport_infra.chalice_apps import (
    BATCH_ITEM_FAILURES,
    BATCH_ITEM_FAILURES_TEMPLATE,
    DeployStepError,
    enable_batch_item_failures,
    fetch_deployment_parameters,
    install_api_key,
    publish_site,
    render_deployment,
    render_policy,
    vendor_shared_package,
)
from spaceport_infra.imports import import_closure
from spaceport_infra.parameters import ARN_KEYS, arn_parameter, env_path

REGION = "eu-west-1"
ACCOUNT = "123456789012"
HEAVY = (
    "torch",
    "numpy",
    "pycolmap",
    "gsplat",
    "PIL",
    "plyfile",
    "spaceport_sfm",
    "spaceport_train",
    "spaceport_compress",
)
# What a Lambda finds besides the package: the runtime (boto3), the Powertools layer (with
# pydantic), and the Chalice runtime that `chalice package` adds.
PROVIDED = {"boto3", "botocore", "aws_lambda_powertools", "pydantic", "chalice"}


def fake_arns() -> dict[str, str]:
    arns = {key: f"arn:aws:service:{REGION}:{ACCOUNT}:{key}" for key in ARN_KEYS}
    arns.update(
        Deployment="test",
        Partition="aws",
        Region=REGION,
        AccountId=ACCOUNT,
        SenderEmail="photos@example.org",
        PowertoolsLayerArn=f"arn:aws:lambda:{REGION}:017000801446:layer:"
        "AWSLambdaPowertoolsPythonV3-python311-x86_64:23",
    )
    return arns


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return policy["Statement"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("app", APPS, ids=lambda app: app.name)
def test_config_turns_autogen_off_and_keeps_timeouts_within_the_queue_contract(app: ChaliceApp):
    config = json.loads((app.directory / ".chalice" / "config.json").read_text())
    assert config["app_name"] == app.app_name
    assert config["autogen_policy"] is False
    assert config["automatic_layer"] is False
    for stage in config["stages"].values():
        assert stage["autogen_policy"] is False and stage["iam_policy_file"].startswith("policy-")
    if app.is_api:
        assert config["lambda_timeout"] <= 29  # API Gateway's integration limit
    elif app.service is not None:
        assert config["lambda_timeout"] <= app.service.consumer_timeout_s


@pytest.mark.parametrize("app", APPS, ids=lambda app: app.name)
def test_policy_is_least_privilege(app: ChaliceApp):
    assert UNITS[app.name].placeholders() <= set(ARN_KEYS)
    policy = render_policy(app, fake_arns())
    for statement in _statements(policy):
        actions = _as_list(statement["Action"])
        assert not [a for a in actions if a == "*" or a.endswith(":*")], statement
        for resource in _as_list(statement["Resource"]):
            assert resource != "*" and ":::*" not in resource, statement
        if any(a.startswith("ses:") for a in actions):
            assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": "photos@example.org"}}
        if "iam:PassRole" in actions:
            assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
        for action in actions:
            if action.startswith("sagemaker:"):
                assert all(f"-job/spaceport-test-{app.name}-" in r for r in _as_list(statement["Resource"])), statement
            if action.startswith("sqs:"):
                assert _as_list(statement["Resource"]) == [fake_arns()[f"{app.name.capitalize()}QueueArn"]]
    consumes = any(a == "sqs:ReceiveMessage" for s in _statements(policy) for a in _as_list(s["Action"]))
    assert consumes == (app.service is not None)


@pytest.mark.parametrize("stage", JOB_STAGES, ids=lambda stage: stage.value)
def test_each_stage_job_reads_only_its_inputs_and_writes_only_its_outputs(stage):
    unit = job_unit(stage)
    assert unit.placeholders() <= set(ARN_KEYS)
    arns = fake_arns()
    policy = unit.policy(arns)
    buckets = {
        Stage.SFM: arns["SfmBucketArn"],
        Stage.TRAIN: arns["TrainBucketArn"],
        Stage.COMPRESS: arns["CompressedBucketArn"],
    }
    for statement in _statements(policy):
        actions = _as_list(statement["Action"])
        assert not [a for a in actions if a == "*" or a.endswith(":*")], statement
        if "s3:PutObject" in actions:
            assert _as_list(statement["Resource"]) == [f"{buckets[stage]}/*"]
        if _as_list(statement["Resource"]) == ["*"]:
            assert actions == ["ecr:GetAuthorizationToken"], "only the action AWS grants on no resource"
    assert not [
        a for s in _statements(policy) for a in _as_list(s["Action"]) if a.startswith(("sqs:", "dynamodb:", "events:"))
    ]


def test_rendering_refuses_a_placeholder_the_stack_does_not_output():
    arns = fake_arns()
    del arns["JobsTableArn"]
    with pytest.raises(DeployStepError, match="JobsTableArn"):
        render_policy(APPS[0], arns)


def _copy_app(app: ChaliceApp, destination: Path) -> ChaliceApp:
    destination.mkdir(parents=True)
    shutil.copy2(app.app_file, destination / "app.py")
    shutil.copytree(
        app.directory / ".chalice",
        destination / ".chalice",
        ignore=shutil.ignore_patterns("deployed", "deployments", "policy-*.json"),
    )
    return ChaliceApp(app.name, destination, app.service)


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``chalice package --stage test`` output folder for each app whose app.py exists."""
    chalice = Path(sys.executable).with_name("chalice")
    if not chalice.exists():
        pytest.skip("chalice is not installed in this environment")
    outputs = {}
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "offline",
        "AWS_SECRET_ACCESS_KEY": "offline",
    }
    env.pop("AWS_PROFILE", None)
    for app in APPS:
        if not app.app_file.exists():
            continue
        copy = _copy_app(app, tmp_path_factory.mktemp(app.name) / app.name)
        vendor_shared_package(copy)
        render_deployment(
            copy, "test", {**PipelineConfig(deployment="test").to_env(), "SPACEPORT_MAX_ATTEMPTS": "3"}, fake_arns()
        )
        out = copy.directory.parent / "package"
        command = [str(chalice), "package", "--stage", "test", str(out)]
        if app.service is not None:
            command[2:2] = ["--merge-template", str(BATCH_ITEM_FAILURES_TEMPLATE)]
        result = subprocess.run(command, cwd=copy.directory, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        outputs[app.name] = out
    return outputs


@pytest.mark.slow
@pytest.mark.parametrize("app", APPS, ids=lambda app: app.name)
def test_chalice_package_holds_the_shared_code_and_no_heavy_packages(app: ChaliceApp, packaged, tmp_path):
    if not app.app_file.exists():
        pytest.skip(f"{app.app_file.relative_to(app.directory.parent.parent)} does not exist yet (control plane)")
    out = packaged[app.name]
    with zipfile.ZipFile(out / "deployment.zip") as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "package")
    reached = import_closure(app.app_file)
    assert reached.third_party <= PROVIDED, reached.third_party - PROVIDED
    for module in reached.first_party:
        path = module.replace(".", "/")
        assert f"{path}.py" in names or f"{path}/__init__.py" in names, module
    assert not [n for n in names if n.split("/")[0] in HEAVY or n.endswith(".so")], names
    # The package imports on its own: shared code from the zip, third parties from the layer/runtime.
    probe = (
        "import sys, app, spaceport\n"
        f"assert spaceport.__file__.startswith({str(tmp_path / 'package')!r}), spaceport.__file__\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path / "package",
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "package"), "AWS_DEFAULT_REGION": REGION},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr

    template = json.loads((out / "sam.json").read_text())
    functions = {
        k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    }
    assert functions
    for function in functions.values():
        assert function["Environment"]["Variables"]["SPACEPORT_BUS_NAME"] == "spaceport-test"
        # The layer's compiled pydantic matches the runtime.
        assert function["Layers"] == [fake_arns()["PowertoolsLayerArn"]]
        assert (function["Runtime"], function["Architectures"]) == ("python3.11", ["x86_64"])
    if app.service is not None:
        [consumer] = [f for f in functions.values() if any(e["Type"] == "SQS" for e in f.get("Events", {}).values())]
        [event] = [e["Properties"] for e in consumer["Events"].values() if e["Type"] == "SQS"]
        assert event["Queue"]["Fn::Sub"].endswith(f":{app.service.queue_name('test')}")
        assert event["BatchSize"] == app.service.batch_size
        assert event["FunctionResponseTypes"] == [BATCH_ITEM_FAILURES]
        assert 6 * consumer["Timeout"] <= app.service.visibility_timeout_s


# --- the steps around chalice deploy, against moto --------------------------------------------


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def _function(name: str, variables: dict[str, str]) -> str:
    iam = boto3.client("iam")
    role = iam.create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}
                ],
            }
        ),
    )["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def consume(event, context):\n    return {}\n")
    return boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.consume",
        Code={"ZipFile": buffer.getvalue()},
        Environment={"Variables": variables},
    )["FunctionArn"]


def _deployed(app: ChaliceApp, resources: list[dict[str, Any]]) -> None:
    folder = app.directory / ".chalice" / "deployed"
    folder.mkdir(parents=True)
    (folder / "test.json").write_text(json.dumps({"schema_version": "2.0", "resources": resources}))


def test_finish_turns_on_batch_item_failures_and_it_survives_a_chalice_update(aws, tmp_path):
    sfm = SERVICES[0]
    app = ChaliceApp(sfm.name, tmp_path / sfm.name, sfm)
    queue_url = boto3.client("sqs").create_queue(QueueName=sfm.queue_name("test"))["QueueUrl"]
    queue_arn = boto3.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    function_arn = _function("spaceport-sfm-test-consume", {})
    lambda_client = boto3.client("lambda")
    # What chalice deploy does: a mapping without FunctionResponseTypes, recorded in deployed/<stage>.json.
    uuid = lambda_client.create_event_source_mapping(
        EventSourceArn=queue_arn, FunctionName=function_arn, BatchSize=sfm.batch_size
    )["UUID"]
    _deployed(
        app,
        [
            {
                "name": "consume-sqs-event-source",
                "resource_type": "sqs_event",
                "queue_arn": queue_arn,
                "event_uuid": uuid,
                "queue": sfm.queue_name("test"),
                "lambda_arn": function_arn,
            }
        ],
    )
    assert not lambda_client.get_event_source_mapping(UUID=uuid).get("FunctionResponseTypes")

    assert enable_batch_item_failures(app, "test", lambda_client) == [uuid]
    assert lambda_client.get_event_source_mapping(UUID=uuid)["FunctionResponseTypes"] == [BATCH_ITEM_FAILURES]
    # A later chalice deploy updates the mapping the way Chalice does (no FunctionResponseTypes field).
    lambda_client.update_event_source_mapping(UUID=uuid, BatchSize=sfm.batch_size, MaximumBatchingWindowInSeconds=0)
    assert lambda_client.get_event_source_mapping(UUID=uuid)["FunctionResponseTypes"] == [BATCH_ITEM_FAILURES]


def test_finish_refuses_a_service_without_its_queue_or_a_missing_deploy(aws, tmp_path):
    sfm = SERVICES[0]
    app = ChaliceApp(sfm.name, tmp_path / sfm.name, sfm)
    with pytest.raises(DeployStepError, match="chalice deploy"):
        enable_batch_item_failures(app, "test", boto3.client("lambda"))
    _deployed(app, [{"name": "consume", "resource_type": "lambda_function", "lambda_arn": "arn:x"}])
    with pytest.raises(DeployStepError, match="no SQS event source"):
        enable_batch_item_failures(app, "test", boto3.client("lambda"))


def test_finish_installs_the_api_key_without_dropping_the_environment(aws, tmp_path):
    gateway = next(app for app in APPS if app.is_api)
    app = ChaliceApp(gateway.name, tmp_path / gateway.name, None)
    arn = _function("spaceport-gateway-test", {"SPACEPORT_BUS_NAME": "spaceport"})
    _deployed(app, [{"name": "api_handler", "resource_type": "lambda_function", "lambda_arn": arn}])
    assert install_api_key(app, "test", boto3.client("lambda"), "k3y") == [arn]
    variables = boto3.client("lambda").get_function_configuration(FunctionName=arn)["Environment"]["Variables"]
    assert variables == {"SPACEPORT_BUS_NAME": "spaceport", "SPACEPORT_API_KEY": "k3y"}


def test_prepare_reads_the_stacks_parameters(aws):
    ssm = boto3.client("ssm")
    with pytest.raises(DeployStepError, match="deploy-infra"):
        fetch_deployment_parameters(ssm, "test")
    ssm.put_parameter(Name=f"{env_path('test')}SPACEPORT_BUS_NAME", Value="spaceport", Type="String")
    ssm.put_parameter(Name=arn_parameter("test", "JobsTableArn"), Value="arn:aws:dynamodb:x", Type="String")
    env, arns = fetch_deployment_parameters(ssm, "test")
    assert env == {"SPACEPORT_BUS_NAME": "spaceport"} and arns == {"JobsTableArn": "arn:aws:dynamodb:x"}


def test_site_step_publishes_the_viewer_with_its_config(aws, tmp_path):
    gateway = next(app for app in APPS if app.is_api)
    app = ChaliceApp(gateway.name, tmp_path / gateway.name, None)
    _deployed(
        app,
        [
            {
                "name": "rest_api",
                "resource_type": "rest_api",
                "rest_api_id": "abc",
                "rest_api_url": "https://abc.execute-api.eu-west-1.amazonaws.com/v1/",
            }
        ],
    )
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>Spaceport</title>")
    (dist / "assets" / "index-1a2b.js").write_text("console.log('viewer')")
    ssm, secrets, s3 = boto3.client("ssm"), boto3.client("secretsmanager"), boto3.client("s3")
    s3.create_bucket(Bucket="site", CreateBucketConfiguration={"LocationConstraint": REGION})
    secret = secrets.create_secret(Name="spaceport/test/api-key", SecretString="k3y")["ARN"]
    ssm.put_parameter(Name=f"{env_path('test')}SPACEPORT_SITE_BUCKET", Value="site", Type="String")
    ssm.put_parameter(Name=arn_parameter("test", "ApiKeySecretArn"), Value=secret, Type="String")

    assert publish_site(app, "test", dist, ssm, secrets, s3) == "site"
    config = json.loads(s3.get_object(Bucket="site", Key="config.json")["Body"].read())
    assert config == {
        "apiBaseUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/v1",
        "apiKey": "k3y",
        "apiKeyHeader": "x-api-key",
    }
    page = s3.head_object(Bucket="site", Key="index.html")
    assert (page["ContentType"], page["CacheControl"]) == ("text/html", "no-cache")
    script = s3.head_object(Bucket="site", Key="assets/index-1a2b.js")
    assert script["CacheControl"].endswith("immutable") and "javascript" in script["ContentType"]
    with pytest.raises(DeployStepError, match="make web"):
        publish_site(app, "test", tmp_path / "nothing", ssm, secrets, s3)


@pytest.mark.slow
def test_batch_item_failures_survive_a_real_chalice_redeploy(tmp_path):
    """`chalice deploy`, finish, `chalice deploy` again: against a moto server, end to end."""
    from moto.server import ThreadedMotoServer

    from spaceport.local.aws import free_port

    sfm = next(app for app in APPS if app.name == "sfm")
    if not sfm.app_file.exists():
        pytest.skip("services/sfm/app.py does not exist yet")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    env.pop("AWS_PROFILE", None)
    try:
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        endpoint = env["AWS_ENDPOINT_URL"]
        lambda_client = session.client("lambda", endpoint_url=endpoint)
        session.client("sqs", endpoint_url=endpoint).create_queue(QueueName=sfm.service.queue_name("test"))
        # moto checks that a function's layers exist: stand one in for AWS's public Powertools layer.
        layer = io.BytesIO()
        with zipfile.ZipFile(layer, "w") as archive:
            archive.writestr("python/powertools_stand_in.py", "")
        arns = fake_arns()
        arns["PowertoolsLayerArn"] = lambda_client.publish_layer_version(
            LayerName="powertools", Content={"ZipFile": layer.getvalue()}
        )["LayerVersionArn"]
        app = _copy_app(sfm, tmp_path / "sfm")
        vendor_shared_package(app)
        render_deployment(app, "test", PipelineConfig(deployment="test").to_env(), arns)
        chalice = [str(Path(sys.executable).with_name("chalice")), "deploy", "--stage", "test"]

        def deploy() -> None:
            # As make deploy runs it, between its prepare and finish steps.
            steps = {**env, MAKE_DEPLOY_ENV: "1"}
            result = subprocess.run(chalice, cwd=app.directory, env=steps, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stdout + result.stderr

        deploy()
        [uuid] = enable_batch_item_failures(app, "test", lambda_client)
        (app.directory / "app.py").write_text((app.directory / "app.py").read_text() + "\n# a code change\n")
        deploy()
        mapping = lambda_client.get_event_source_mapping(UUID=uuid)
        assert mapping["FunctionResponseTypes"] == [BATCH_ITEM_FAILURES]
        assert mapping["BatchSize"] == sfm.service.batch_size
    finally:
        # moto's state is process-wide: wipe what this test made (Lambda models reach for a Docker
        # engine when listed), so later tests' moto servers start empty.
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST"))
        server.stop()


def test_chalice_in_an_unprepared_app_folder_stops_with_one_plain_line(tmp_path):
    sfm = app_named("sfm")
    app = _copy_app(sfm, tmp_path / "sfm")
    chalice = [str(Path(sys.executable).with_name("chalice")), "package", "--stage", "dev", str(tmp_path / "out")]
    env = {**os.environ, "AWS_DEFAULT_REGION": REGION}
    result = subprocess.run(chalice, cwd=app.directory, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 91 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "spaceport: sfm is not prepared for the dev deployment: run `make deploy SERVICE=sfm DEPLOYMENT=dev` "
        "from the repository root (after `make deploy-infra DEPLOYMENT=dev`); it fills .chalice/ from the stack."
    ]


def test_a_prepared_app_may_deploy_from_its_folder_once_make_deploy_has_finished_it(tmp_path, monkeypatch):
    app = _copy_app(app_named("notify"), tmp_path / "notify")
    vendor_shared_package(app)
    render_deployment(app, "dev", PipelineConfig(deployment="dev").to_env(), fake_arns())
    assert unprepared(app.directory, "notify", "dev", "package") is None
    monkeypatch.delenv(MAKE_DEPLOY_ENV, raising=False)
    assert "first deploy" in unprepared(app.directory, "notify", "dev", "deploy")
    (app.directory / ".chalice" / "deployed").mkdir()
    (app.directory / ".chalice" / "deployed" / "dev.json").write_text("{}")
    assert unprepared(app.directory, "notify", "dev", "deploy") is None


def test_chalice_in_the_checkout_refuses_vendored_code_older_than_the_checkout(tmp_path):
    from spaceport.unit_app import stale_vendored_file

    copy = tmp_path / "checkout" / "services" / "notify"
    (tmp_path / "checkout" / "spaceport").mkdir(parents=True)
    (tmp_path / "checkout" / "spaceport" / "__init__.py").write_text("")
    (tmp_path / "checkout" / "spaceport" / "config.py").write_text("NEW = 1\n")
    (copy / "vendor" / "spaceport").mkdir(parents=True)
    (copy / "vendor" / "spaceport" / "__init__.py").write_text("")
    (copy / "vendor" / "spaceport" / "config.py").write_text("OLD = 1\n")
    assert stale_vendored_file(copy) == "spaceport/config.py"
    (copy / "vendor" / "spaceport" / "config.py").write_text("NEW = 1\n")
    assert stale_vendored_file(copy) is None
