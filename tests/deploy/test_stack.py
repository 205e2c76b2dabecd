"""The synthesised CloudFormation template, checked as strictly as a deploy would (offline)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spaceport.config import PipelineConfig
from spaceport.contracts.stages import JOB_STAGES
from spaceport.contracts.topology import DEFAULT_BUS, PIPELINE_BUS, SERVICES
from spaceport_infra.apps import APPS, lambda_function_names
from spaceport_infra.parameters import ARN_KEYS, arn_path, env_path, rules_path

pytestmark = pytest.mark.slow

# Actions that have no resource type in IAM: "*" is the only resource they accept.
RESOURCELESS_ACTIONS = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}


def _logical_id(reference: Any) -> str | None:
    """``{"Ref": X}`` / ``{"Fn::GetAtt": [X, ...]}`` -> ``X``."""
    if isinstance(reference, dict):
        if "Ref" in reference:
            return reference["Ref"]
        if "Fn::GetAtt" in reference:
            return reference["Fn::GetAtt"][0]
    return None


def _by_property(resources: dict[str, dict[str, Any]], name: str) -> dict[str, str]:
    """``{value of Properties[name]: logical id}``."""
    return {r["Properties"][name]: key for key, r in resources.items() if name in r.get("Properties", {})}


def _allow_statements(synthesised) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for key, resource in synthesised.resources.items():
        properties = resource.get("Properties", {})
        documents = [properties["PolicyDocument"]] if "PolicyDocument" in properties else []
        documents += [p["PolicyDocument"] for p in properties.get("Policies", [])]
        for document in documents:
            found += [(key, s) for s in document["Statement"] if s["Effect"] == "Allow"]
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_every_queue_has_a_dead_letter_queue_and_a_long_enough_visibility_timeout(synthesised, deployment):
    queues = synthesised.of_type("AWS::SQS::Queue")
    by_name = _by_property(queues, "QueueName")
    for spec in SERVICES:
        queue = queues[by_name[spec.queue_name(deployment)]]["Properties"]
        redrive = queue["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == spec.max_receive_count == 5
        assert _logical_id(redrive["deadLetterTargetArn"]) == by_name[spec.dead_letter_queue_name(deployment)]
        # AWS's rule for Lambda event sources: at least 6x the function's timeout.
        assert queue["VisibilityTimeout"] >= 6 * spec.consumer_timeout_s
        app_config = json.loads((APPS_BY_NAME[spec.name].directory / ".chalice" / "config.json").read_text())
        assert queue["VisibilityTimeout"] >= 6 * app_config["lambda_timeout"]
    for name, key in by_name.items():
        properties = queues[key]["Properties"]
        assert properties.get("SqsManagedSseEnabled") is True, name
        if not name.endswith("-dlq"):
            assert "RedrivePolicy" in properties, f"{name} has no dead-letter queue"


APPS_BY_NAME = {app.name: app for app in APPS}


def test_every_rule_routes_the_topology_pattern_to_its_service_queue(synthesised, deployment):
    rules = synthesised.of_type("AWS::Events::Rule")
    queues = _by_property(synthesised.of_type("AWS::SQS::Queue"), "QueueName")
    bus = next(iter(synthesised.of_type("AWS::Events::EventBus")))
    by_name = _by_property(rules, "Name")
    subscriptions = [(spec, s) for spec in SERVICES for s in spec.subscriptions(deployment)]
    assert len(rules) == len(subscriptions)
    for spec, subscription in subscriptions:
        rule = rules[by_name[subscription.rule_name]]["Properties"]
        assert rule["EventPattern"] == subscription.pattern
        if subscription.bus == PIPELINE_BUS:
            assert _logical_id(rule["EventBusName"]) == bus
        else:
            assert subscription.bus == DEFAULT_BUS and rule.get("EventBusName", "default") == "default"
        [target] = rule["Targets"]
        assert _logical_id(target["Arn"]) == queues[spec.queue_name(deployment)]
    # Each queue accepts messages from exactly the rules that target it (aws:SourceArn).
    for policy in synthesised.of_type("AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny":
                continue  # refuses plain HTTP
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}
            assert _logical_id(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) in rules


def test_buckets_are_encrypted_private_and_have_lifecycle_rules(synthesised):
    buckets = synthesised.of_type("AWS::S3::Bucket")
    assert len(buckets) == 5
    kinds = {}
    for bucket in buckets.values():
        properties = bucket["Properties"]
        name_parts = properties["BucketName"]["Fn::Join"][1]
        kinds[name_parts[0].split("-")[2]] = properties
        [rule] = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        rules = properties["LifecycleConfiguration"]["Rules"]
        assert any(r.get("AbortIncompleteMultipartUpload") for r in rules)
    assert set(kinds) == {"uploads", "sfm", "train", "compressed", "site"}
    assert any("ExpirationInDays" in r for r in kinds["uploads"]["LifecycleConfiguration"]["Rules"])
    for kind in ("sfm", "train", "compressed"):
        transitions = [t for r in kinds[kind]["LifecycleConfiguration"]["Rules"] for t in r.get("Transitions", [])]
        assert [t["StorageClass"] for t in transitions] == ["STANDARD_IA"]
    # Every bucket refuses plain HTTP.
    policies = synthesised.of_type("AWS::S3::BucketPolicy")
    assert {_logical_id(p["Properties"]["Bucket"]) for p in policies.values()} == set(buckets)
    for policy in policies.values():
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
        )


def test_no_statement_grants_wildcard_actions_or_wildcard_resources_on_data(synthesised):
    statements = _allow_statements(synthesised)
    assert statements
    for owner, statement in statements:
        actions = _as_list(statement["Action"])
        assert not [a for a in actions if a == "*" or a.endswith(":*")], (owner, statement)
        if "*" in _as_list(statement.get("Resource", [])):
            assert set(actions) <= RESOURCELESS_ACTIONS, (owner, statement)


def test_each_stage_job_has_a_role_of_its_own_reaching_only_the_pipeline_buckets(synthesised):
    buckets = {key for key in synthesised.of_type("AWS::S3::Bucket")}
    site = next(k for k in buckets if k.startswith("SiteBucket"))
    roles = synthesised.of_type("AWS::IAM::Role")
    assert sorted(r["Properties"]["RoleName"] for r in roles.values()) == [
        "spaceport-compress-job-test",
        "spaceport-sfm-job-test",
        "spaceport-train-job-test",
    ]
    for role in roles.values():
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "Service": "sagemaker.amazonaws.com"
        }
    policies = synthesised.of_type("AWS::IAM::Policy")
    assert len(policies) == len(roles) and all(len(p["Properties"]["Roles"]) == 1 for p in policies.values())
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if not any(a.startswith("s3:") for a in _as_list(statement["Action"])):
                continue
            for resource in _as_list(statement["Resource"]):
                text = json.dumps(resource)
                assert any(b in text for b in buckets - {site}) and site not in text, statement


def test_alarms_watch_dead_letter_queues_failed_jobs_and_lambda_errors(synthesised):
    alarms = [a["Properties"] for a in synthesised.of_type("AWS::CloudWatch::Alarm").values()]
    [topic] = synthesised.of_type("AWS::SNS::Topic")
    for alarm in alarms:
        assert [_logical_id(action) for action in alarm["AlarmActions"]] == [topic]

    def watched(metric: str, dimension: str) -> dict[str, dict[str, Any]]:
        found = {}
        for alarm in alarms:
            # A plain metric, or (when it carries a label) a one-metric "Metrics" list.
            stats = [alarm] + [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
            for stat in stats:
                if stat.get("MetricName") == metric:
                    for d in stat["Dimensions"]:
                        if d["Name"] == dimension:
                            found[json.dumps(d["Value"])] = alarm
        return found

    dlq_alarms = watched("ApproximateNumberOfMessagesVisible", "QueueName")
    queues = synthesised.of_type("AWS::SQS::Queue")
    dlqs = [k for k, q in queues.items() if q["Properties"]["QueueName"].endswith("-dlq")]
    assert len(dlqs) == len(SERVICES) + 1  # one per service, plus EventBridge's delivery DLQ
    for dlq in dlqs:
        alarm = next(a for text, a in dlq_alarms.items() if dlq in text)
        assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    failed = watched("MatchedEvents", "RuleName")
    assert list(failed) == [json.dumps("spaceport-test-notify-JobFailed")]
    errors = watched("Errors", "FunctionName")
    expected = {name for app in APPS for name in lambda_function_names(app, "test")}
    assert {json.loads(text) for text in errors} == expected
    present = [app.name for app in APPS if app.app_file.exists()]
    assert len(expected) >= len(present)
    synthesised.template.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_tables_have_point_in_time_recovery_and_the_adapters_key_schema(synthesised, deployment):
    from spaceport.adapters.jobstore import idempotency_table_definition, jobs_table_definition

    tables = _by_property(synthesised.of_type("AWS::DynamoDB::Table"), "TableName")
    names = PipelineConfig(deployment=deployment)
    for definition in (jobs_table_definition(names.jobs_table), idempotency_table_definition(names.idempotency_table)):
        table = synthesised.resources[tables[definition["TableName"]]]["Properties"]
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["KeySchema"] == definition["KeySchema"]
        assert sorted(map(json.dumps, table["AttributeDefinitions"])) == sorted(
            map(json.dumps, definition["AttributeDefinitions"])
        )
        assert [i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])] == [
            i["IndexName"] for i in definition.get("GlobalSecondaryIndexes", [])
        ]
    idempotency = synthesised.resources[tables[names.idempotency_table]]["Properties"]
    assert idempotency["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


class _Recording(dict):
    """A mapping that remembers every name ``PipelineConfig.from_env`` asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def test_parameters_give_the_apps_every_resource_name_config_reads(synthesised, deployment):
    parameters = {
        p["Properties"]["Name"]: p["Properties"]["Value"] for p in synthesised.of_type("AWS::SSM::Parameter").values()
    }
    env = {name.removeprefix(env_path("test")) for name in parameters if name.startswith(env_path("test"))}
    recording = _Recording()
    PipelineConfig.from_env(recording)
    assert env <= recording.asked, env - recording.asked
    # Everything that names a resource or how a job runs comes from the stack; tuning knobs keep defaults.
    tuning = {
        "SPACEPORT_API_KEY",
        "SPACEPORT_MAX_ATTEMPTS",
        "SPACEPORT_MAX_UPLOAD_BYTES",
        "SPACEPORT_MAX_BODY_BYTES",
        "SPACEPORT_LINK_TTL_S",
    }
    assert recording.asked - tuning <= env, (recording.asked - tuning) - env
    assert parameters[env_path("test") + "SPACEPORT_TRAIN_INSTANCE"] == "ml.g5.2xlarge"
    assert parameters[env_path("test") + "SPACEPORT_COMPRESS_INSTANCE"] == "ml.g4dn.xlarge"
    arns = {name.removeprefix(arn_path("test")) for name in parameters if name.startswith(arn_path("test"))}
    assert arns == set(ARN_KEYS)
    rules = {name.removeprefix(rules_path("test")) for name in parameters if name.startswith(rules_path("test"))}
    assert rules == {s.rule_name for spec in SERVICES for s in spec.subscriptions(deployment)}


def test_archive_keeps_pipeline_events_and_replay_targets_only_pipeline_rules(synthesised, deployment):
    [archive] = synthesised.of_type("AWS::Events::Archive").values()
    [bus] = synthesised.of_type("AWS::Events::EventBus").values()
    # The names `spaceport replay --archive` and the apps use.
    deployed = PipelineConfig(deployment=deployment)
    assert (bus["Properties"]["Name"], archive["Properties"]["ArchiveName"]) == (
        deployed.bus_name,
        deployed.archive_name,
    )
    assert archive["Properties"]["RetentionDays"] == 90
    assert archive["Properties"]["EventPattern"] == {"source": ["spaceport.pipeline"]}
    replay = synthesised.stack.resolve(synthesised.stack.node.find_child("ReplayRuleArns").value)
    named = json.dumps(replay)
    pipeline_rules = [s.rule_name for spec in SERVICES for s in spec.subscriptions(deployment) if s.bus == PIPELINE_BUS]
    assert all(name in named for name in pipeline_rules)
    assert "sagemaker-state" not in named


def test_template_passes_cfn_lint(synthesised):
    # The project's cfn-lint (the infra extra), not an older one elsewhere on the PATH.
    beside = Path(sys.executable).with_name("cfn-lint")
    linter = str(beside) if beside.exists() else shutil.which("cfn-lint")
    assert linter, "cfn-lint is not installed (pip install -e '.[infra]')"
    result = subprocess.run([linter, str(synthesised.template_file)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_settings_refuse_what_cannot_deploy():
    from spaceport_infra.settings import InfraSettings, InfraSettingsError

    context = {
        "deployment": "dev",
        "image_tag": "0a1b2c3d4e5f",
        "archive_retention_days": "30",
        "train_spot": "false",
        "train_instance": "ml.g5.4xlarge",
    }
    settings = InfraSettings.from_context(context.get)
    assert (settings.deployment, settings.archive_retention_days, settings.train_spot) == ("dev", 30, False)
    assert settings.machines[next(s for s in settings.machines if s.value == "train")].instance_type == "ml.g5.4xlarge"
    assert InfraSettings(image_tag="0a1b2c3d4e5f").image_tag == "0a1b2c3d4e5f"
    for bad in (
        {"deployment": "Prod!"},
        {"deployment": "averylongdeployment"},
        {"image_tag": ""},
        {"image_tag": "latest"},
        {"sender_email": "nobody"},
        {"runs_to_infrequent_access_days": 7},
        {"uploads_expire_days": 0},
    ):
        with pytest.raises(InfraSettingsError):
            InfraSettings(**{"image_tag": "0a1b2c3d4e5f", **bad})
    with pytest.raises(InfraSettingsError, match="whole number"):
        InfraSettings.from_context({"image_tag": "0a1b2c3d4e5f", "archive_retention_days": "ninety"}.get)


def test_jobs_run_an_immutable_image_of_the_deployment(synthesised, deployment):
    repositories = synthesised.of_type("AWS::ECR::Repository")
    names = sorted(r["Properties"]["RepositoryName"] for r in repositories.values())
    assert names == sorted(f"spaceport-{deployment}-{stage.value}" for stage in JOB_STAGES)
    assert all(r["Properties"]["ImageTagMutability"] == "IMMUTABLE" for r in repositories.values())
    env = synthesised.stack.lambda_environment()
    for stage in JOB_STAGES:
        image = json.dumps(synthesised.stack.resolve(env[f"SPACEPORT_{stage.name}_IMAGE"]))
        assert f":{synthesised.stack.settings.image_tag}" in image and "latest" not in image, image
