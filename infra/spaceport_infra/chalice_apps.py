"""``make deploy SERVICE=...``: what runs around ``chalice deploy`` for one app.

``prepare`` (before ``chalice deploy``)
    * vendors the shared ``spaceport`` package into ``<app>/vendor/`` (Chalice copies
      ``vendor/`` to the top of the deployment package): only the modules ``app.py`` reaches
      by import, so no stage-job code, numpy, torch or pycolmap travels with a Lambda;
    * reads the stack's SSM parameters (``/spaceport/<deployment>/env/*`` and ``arn/*``) and
      writes them into ``.chalice/config.json`` (the Chalice stage's ``environment_variables`` and
      ``layers``): names and ARNs only, nothing secret;
    * writes the app's IAM policy (its unit's grants in :mod:`spaceport.contracts.units`, with the
      stack's ARNs) into ``.chalice/policy-<deployment>.json``.

``finish`` (after ``chalice deploy``)
    Chalice cannot set ``FunctionResponseTypes`` on an SQS event source, so the services'
    partial batch responses would be ignored (a batch with one failure would be deleted
    whole). ``finish`` turns on ``ReportBatchItemFailures`` for every SQS event source that
    ``.chalice/deployed/<deployment>.json`` records, then reads each mapping back and fails loudly
    if it is not on. Chalice's later updates leave the setting alone (it never sends the field);
    a mapping it recreates is fixed by the next ``finish``, which ``make deploy`` always runs.

    For the gateway, ``finish`` also gives every route of its stage the throttle the stack
    published (``/spaceport/<deployment>/api/``; Chalice creates the REST API, so the stack cannot)
    and attaches the stage to the integrations' usage plan, so that their API keys work there.
    The routes are behind the Cognito authorizer Chalice creates from the pool's ARN in the
    environment; nothing secret is deployed.

``make deploy SERVICE=sfm DEPLOYMENT=prod`` runs ``prepare``, ``chalice deploy --stage prod`` in
``services/sfm`` and ``finish``, in that order.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spaceport.config import PipelineConfig
from spaceport.contracts.units import UNITS
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode
from spaceport.files import write_json_atomic
from spaceport_infra.apps import APPS, ChaliceApp, app_named
from spaceport_infra.imports import REPO_ROOT, import_closure, module_file
from spaceport_infra.parameters import API_THROTTLE, api_path, arn_path, env_path

SHARED_PACKAGE = "spaceport"
BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
# For `chalice package --merge-template`: the same setting in the SAM template, for every service.
BATCH_ITEM_FAILURES_TEMPLATE = REPO_ROOT / "infra" / "chalice" / "batch-item-failures.json"


class DeployStepError(SpaceportError):
    """A deploy step that cannot go on (missing stack parameters, a template placeholder, ...)."""

    code = "deploy_step_failed"
    exit_code = ExitCode.DEPLOY_STEP_FAILED


# --- vendoring the shared package --------------------------------------------------------


def vendor_shared_package(app: ChaliceApp) -> list[str]:
    """Copy the shared modules ``app.py`` reaches into ``<app>/vendor/spaceport``; returns them."""
    if not app.app_file.exists():
        raise DeployStepError(f"{app.app_file} does not exist yet: nothing to deploy for {app.name}.")
    reached = import_closure(app.app_file)
    jobs = sorted(m for m in reached.first_party if m.split(".")[0] != SHARED_PACKAGE)
    if jobs:
        raise DeployStepError(f"{app.app_file} reaches stage-job code {jobs}: Lambda code never imports it.")
    shared = reached.first_party
    vendor = app.directory / "vendor"
    vendor.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".spaceport-", dir=vendor))
    try:
        for module in sorted(shared):
            source = module_file(module)
            assert source is not None
            target = staging / source.relative_to(REPO_ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        final = vendor / SHARED_PACKAGE
        if final.exists():
            shutil.rmtree(final)
        (staging / SHARED_PACKAGE).rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(shared)


# --- config.json and the policy file ------------------------------------------------------


def config_path(app: ChaliceApp) -> Path:
    return app.directory / ".chalice" / "config.json"


def policy_path(app: ChaliceApp, deployment: str) -> Path:
    return app.directory / ".chalice" / f"policy-{deployment}.json"


def render_policy(app: ChaliceApp, arns: Mapping[str, str]) -> dict[str, Any]:
    """The app's IAM policy (its unit's grants, :mod:`spaceport.contracts.units`) with the stack's ARNs filled in."""
    unit = UNITS[app.name]
    missing = unit.placeholders() - set(arns)
    if missing:
        raise DeployStepError(f"The {app.name} policy names {sorted(missing)}, which the stack does not output.")
    return unit.policy(arns)


def render_deployment(app: ChaliceApp, deployment: str, env: Mapping[str, str], arns: Mapping[str, str]) -> None:
    """Write ``deployment``'s environment, layer and policy file for ``app``."""
    config = json.loads(config_path(app).read_text())
    section = config.setdefault("stages", {}).setdefault(deployment, {})
    section["environment_variables"] = dict(sorted(env.items()))
    section["layers"] = [arns["PowertoolsLayerArn"]]
    section["iam_policy_file"] = policy_path(app, deployment).name
    section["autogen_policy"] = False
    write_json_atomic(policy_path(app, deployment), render_policy(app, arns))
    write_json_atomic(config_path(app), config)


def _parameters_under(ssm: Any, path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True):
        for parameter in page["Parameters"]:
            values[parameter["Name"][len(path) :]] = parameter["Value"]
    return values


def fetch_deployment_parameters(ssm: Any, deployment: str) -> tuple[dict[str, str], dict[str, str]]:
    """``(environment, arns)`` as the stack left them in SSM."""
    env = _parameters_under(ssm, env_path(deployment))
    arns = _parameters_under(ssm, arn_path(deployment))
    if not env or not arns:
        raise DeployStepError(
            f"No Spaceport parameters under {env_path(deployment)}: run `make deploy-infra DEPLOYMENT={deployment}` "
            "first (and check AWS_REGION / AWS_PROFILE)."
        )
    return env, arns


# --- after chalice deploy -----------------------------------------------------------------


def deployed_resources(app: ChaliceApp, deployment: str, resource_type: str) -> list[dict[str, Any]]:
    """What Chalice recorded in ``.chalice/deployed/<deployment>.json`` of one type (``sqs_event``, ...)."""
    deployed = app.directory / ".chalice" / "deployed" / f"{deployment}.json"
    if not deployed.exists():
        raise DeployStepError(
            f"{deployed} is missing: run `chalice deploy --stage {deployment}` in {app.directory} first."
        )
    resources = json.loads(deployed.read_text()).get("resources", [])
    return [resource for resource in resources if resource.get("resource_type") == resource_type]


def enable_batch_item_failures(app: ChaliceApp, deployment: str, lambda_client: Any) -> list[str]:
    """Turn on ``ReportBatchItemFailures`` for the app's SQS event sources; returns their UUIDs."""
    sources = deployed_resources(app, deployment, "sqs_event")
    if app.service is not None and not sources:
        raise DeployStepError(f"{app.name} consumes {app.service.queue_name} but Chalice deployed no SQS event source.")
    done = []
    for source in sources:
        uuid = source["event_uuid"]
        # A mapping Chalice just created or updated refuses another update until it settles.
        _wait_until_settled(lambda_client, uuid)
        lambda_client.update_event_source_mapping(UUID=uuid, FunctionResponseTypes=[BATCH_ITEM_FAILURES])
        _wait_until_settled(lambda_client, uuid)
        current = lambda_client.get_event_source_mapping(UUID=uuid).get("FunctionResponseTypes") or []
        if BATCH_ITEM_FAILURES not in current:
            raise DeployStepError(f"Event source {uuid} ({source.get('queue')}) still lacks {BATCH_ITEM_FAILURES}.")
        done.append(uuid)
    return done


def _wait_until_settled(lambda_client: Any, uuid: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (state := lambda_client.get_event_source_mapping(UUID=uuid)["State"]) not in ("Enabled", "Disabled"):
        if time.monotonic() > deadline:
            raise DeployStepError(f"Event source {uuid} is still {state} after {timeout_s:.0f} s.")
        time.sleep(2.0)


def _chalice_stage(app: ChaliceApp) -> str:
    """The API Gateway stage Chalice deploys the app's REST API to (``api_gateway_stage``)."""
    return str(json.loads(config_path(app).read_text()).get("api_gateway_stage", "api"))


def apply_api_settings(app: ChaliceApp, deployment: str, apigateway: Any, ssm: Any) -> dict[str, Any]:
    """Throttle every route of the gateway's stage and attach the stage to the integrations' usage
    plan, with what the stack published; reads both back and fails loudly if they did not stick."""
    settings = _parameters_under(ssm, api_path(deployment))
    missing = set(API_THROTTLE.values()) - set(settings)
    if missing:
        raise DeployStepError(f"No {sorted(missing)} under {api_path(deployment)}: run `make deploy-infra` first.")
    apis = deployed_resources(app, deployment, "rest_api")
    if not apis:
        raise DeployStepError(f"The gateway has no REST API in deployment {deployment!r}: chalice deploy it first.")
    api_id, stage = apis[0]["rest_api_id"], _chalice_stage(app)
    rate, burst = float(settings[API_THROTTLE["rate"]]), int(settings[API_THROTTLE["burst"]])
    apigateway.update_stage(
        restApiId=api_id,
        stageName=stage,
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(rate)},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(burst)},
        ],
    )
    plan_id = settings[API_THROTTLE["plan"]]
    plan = apigateway.get_usage_plan(usagePlanId=plan_id)
    if not any(s["apiId"] == api_id and s["stage"] == stage for s in plan.get("apiStages", [])):
        apigateway.update_usage_plan(
            usagePlanId=plan_id, patchOperations=[{"op": "add", "path": "/apiStages", "value": f"{api_id}:{stage}"}]
        )
    every_route = apigateway.get_stage(restApiId=api_id, stageName=stage).get("methodSettings", {}).get("*/*", {})
    if (every_route.get("throttlingRateLimit"), every_route.get("throttlingBurstLimit")) != (rate, burst):
        raise DeployStepError(f"Stage {stage} of {api_id} does not hold the throttle {rate}/s, burst {burst}.")
    stages = apigateway.get_usage_plan(usagePlanId=plan_id).get("apiStages", [])
    if not any(s["apiId"] == api_id and s["stage"] == stage for s in stages):
        raise DeployStepError(f"Usage plan {plan_id} does not include {api_id}:{stage}.")
    return {"api": api_id, "stage": stage, "rate": rate, "burst": burst, "usage_plan": plan_id}


# --- the viewer site ------------------------------------------------------------------------

# Fetched on every page load: a new deploy shows at once. Vite's hashed assets cache for good.
_ALWAYS_FRESH = {"index.html", "config.json"}


def publish_site(gateway: ChaliceApp, deployment: str, dist: Path, ssm: Any, s3: Any) -> str:
    """Upload the built viewer (``web/dist``) and its ``/config.json`` to the site bucket.

    ``config.json`` tells the page the gateway's URL (from the gateway's Chalice deploy) and how
    to sign in (the user pool and its web client: public ids, no secret); returns the bucket name.
    """
    if not (dist / "index.html").is_file():
        raise DeployStepError(f"{dist}/index.html is missing: build the site first (make web).")
    apis = deployed_resources(gateway, deployment, "rest_api")
    if not apis:
        raise DeployStepError(
            f"The gateway has no REST API in deployment {deployment!r}: run `make deploy SERVICE=gateway`."
        )
    env, _ = fetch_deployment_parameters(ssm, deployment)
    bucket = env["SPACEPORT_SITE_BUCKET"]
    config = PipelineConfig.from_env(env)
    site_config = {
        "apiBaseUrl": apis[0]["rest_api_url"].rstrip("/"),
        "auth": {
            "region": ssm.meta.region_name,
            "userPoolId": config.user_pool_id,
            "clientId": config.user_pool_client_id,
            "endpoint": None,
            "authFlow": "USER_SRP_AUTH",
        },
    }
    for path in sorted(p for p in dist.rglob("*") if p.is_file()):
        key = path.relative_to(dist).as_posix()
        s3.upload_file(str(path), bucket, key, ExtraArgs=_object_settings(key))
    s3.put_object(
        Bucket=bucket, Key="config.json", Body=json.dumps(site_config).encode(), **_object_settings("config.json")
    )
    return bucket


def _object_settings(key: str) -> dict[str, str]:
    content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    cache = "no-cache" if key in _ALWAYS_FRESH else "public, max-age=31536000, immutable"
    return {"ContentType": content_type, "CacheControl": cache}


# --- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spaceport_infra.chalice_apps",
        description="Steps around `chalice deploy` for one Spaceport app.",
    )
    parser.add_argument(
        "step",
        choices=("prepare", "finish", "path", "vendor", "site"),
        help="prepare: vendor + config + policy; finish: ReportBatchItemFailures (the gateway: throttle, usage plan); "
        "path: print the app's folder; vendor: only vendor the shared package; "
        "site: publish web/dist and /config.json (app: gateway)",
    )
    parser.add_argument("app", choices=[app.name for app in APPS])
    parser.add_argument(
        "--deployment", default=os.environ.get("DEPLOYMENT", "prod"), help="the deployment (Chalice calls it --stage)"
    )
    parser.add_argument("--dist", type=Path, default=REPO_ROOT / "web" / "dist", help="the built site (site step)")
    args = parser.parse_args(argv)
    app = app_named(args.app)
    try:
        if args.step == "site":
            import boto3

            bucket = publish_site(app, args.deployment, args.dist, boto3.client("ssm"), boto3.client("s3"))
            print(f"published {args.dist} and /config.json to s3://{bucket}/")
        elif args.step == "path":
            print(app.directory)
        elif args.step == "vendor":
            print(f"vendored {len(vendor_shared_package(app))} modules into {app.directory / 'vendor'}")
        elif args.step == "prepare":
            import boto3

            modules = vendor_shared_package(app)
            env, arns = fetch_deployment_parameters(boto3.client("ssm"), args.deployment)
            render_deployment(app, args.deployment, env, arns)
            print(
                f"{app.name}: vendored {len(modules)} modules; wrote deployment {args.deployment!r} "
                f"({len(env)} variables) and {policy_path(app, args.deployment).name}"
            )
        else:
            import boto3

            lambda_client = boto3.client("lambda")
            uuids = enable_batch_item_failures(app, args.deployment, lambda_client)
            print(f"{app.name}: {BATCH_ITEM_FAILURES} on for {len(uuids)} SQS event source(s)")
            if app.is_api:
                applied = apply_api_settings(app, args.deployment, boto3.client("apigateway"), boto3.client("ssm"))
                print(
                    f"{app.name}: every route of {applied['api']}/{applied['stage']} throttled to "
                    f"{applied['rate']:g}/s (burst {applied['burst']}); usage plan {applied['usage_plan']} attached"
                )
    except DeployStepError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
