"""End to end on the local runtime, with real stage jobs on tiny settings.

One capture goes from ``POST /jobs`` to the email (module fixture ``first_run``), with two
faults injected on the way, each asserted by its own test:

* a malformed message sits in the sfm queue in the same batch as the job's
  ``JobRequested``: it must reach the dead-letter queue without holding the job up;
* the train worker dies after launching the training job, before acknowledging the
  message: the message is redelivered to a new worker and the job still runs once.

Then the job is reprocessed from train as a new run, which must leave run 1's outputs intact.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from spaceport.contracts.job import JobRecord, JobStatus

pytestmark = pytest.mark.slow

# Tiny training so that the whole module stays within about three minutes on 2 cores.
OPTIONS = {"preset": "quick", "steps": 10}
EMAIL = "pilot@example.com"
PIPELINE_ORDER = [
    "JobRequested",
    "StageStarted",
    "SfmCompleted",
    "StageStarted",
    "TrainingCompleted",
    "StageStarted",
    "CompressionCompleted",
]


def wait_for(predicate, timeout_s: float, poll_s: float = 0.25, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def job_names(workdir: Path, prefix: str) -> list[str]:
    """The local runner's job folders whose name starts with ``prefix`` (one per launched job)."""
    jobs = workdir / "jobs"
    return sorted(p.name for p in jobs.iterdir() if p.name.startswith(prefix)) if jobs.exists() else []


@dataclass
class FirstRun:
    job_id: str
    record: JobRecord
    transitions: list[tuple[str, str, int, float]]  # (status, stage, position, percent) as observed
    dead_train_worker: Any
    malformed_body: str
    posted_at: datetime


def _queue_depth(url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"
    ]
    return int(attributes["ApproximateNumberOfMessages"])


def stack_record(stack, job_id: str) -> JobRecord:
    from spaceport.adapters.jobstore import DynamoJobStore

    return DynamoJobStore(boto3.resource("dynamodb").Table(stack.config.jobs_table)).get(job_id)


def _follow(stack, job_id: str, run_id: str, timeout_s: float) -> tuple[JobRecord, list]:
    """The job's steps as observed: the record's position, and the percent the API shows (from the
    running job's progress file, as in AWS)."""
    from spaceport.local.client import GatewayClient
    from spaceport.local.cognito import sign_in_user

    api = GatewayClient(stack.gateway_url, sign_in_user(stack.resources.user_pool, EMAIL).id_token)
    seen: list[tuple[str, str, int, float]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = stack_record(stack, job_id)
        view = api.get_job(job_id)
        step = (record.status.value, record.stage.value, record.position, float(view["stage_percent"]))
        if not seen or seen[-1] != step:
            seen.append(step)
        if record.run_id == run_id and record.status.is_final:
            return record, seen
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} run {run_id} did not finish in {timeout_s} s: {seen[-3:]}")


@pytest.fixture(scope="module")
def api(stack):
    """The API as the local user EMAIL, signed in to the stack's user pool."""
    from spaceport.local.client import GatewayClient
    from spaceport.local.cognito import sign_in_user

    return GatewayClient(stack.gateway_url, sign_in_user(stack.resources.user_pool, EMAIL).id_token)


@pytest.fixture(scope="module")
def first_run(stack, observer, api, sample_capture) -> FirstRun:
    pytest.importorskip("spaceport_compress.cli", reason="the compression job (spaceport compress) is not installed")
    sfm_queue = stack.resources.queue_urls["sfm"]
    # Fault 1: a malformed message waits in the sfm queue for the job's JobRequested.
    stack.pause_worker("sfm")
    malformed = '{"source": "spaceport.pipeline", "detail-type": "JobRequested", "detail": {"job_id": 7}}'
    boto3.client("sqs").send_message(QueueUrl=sfm_queue, MessageBody=malformed)
    # Fault 2: the train worker dies right after its first batch; its messages come back after 4 s.
    dead_train_worker = stack.workers["train"]
    dead_train_worker.visibility_timeout_s = 4
    dead_train_worker.die_after_next_batch()

    posted_at = datetime.now(UTC)
    job_id = api.create_job(api.upload(sample_capture.zip_path), OPTIONS)
    wait_for(lambda: _queue_depth(sfm_queue) >= 2, 10, what="JobRequested beside the malformed message")
    stack.resume_worker("sfm")
    record, transitions = _follow(stack, job_id, "r1", timeout_s=300)
    assert stack.wait_until_idle(timeout_s=30)
    return FirstRun(job_id, record, transitions, dead_train_worker, malformed, posted_at)


def test_the_sample_goes_from_post_to_email_through_every_stage(stack, observer, first_run, api, tmp_path):
    from spaceport.splats import read_ply

    record = first_run.record
    assert record.status is JobStatus.SUCCEEDED, record.error
    assert record.runs[0].status is JobStatus.SUCCEEDED

    # Events in order, each once.
    events = observer.pipeline_events(first_run.job_id)
    assert [e["detail-type"] for e in events] == PIPELINE_ORDER
    assert [e["detail"]["stage"] for e in events if e["detail-type"] == "StageStarted"] == ["sfm", "train", "compress"]

    # The record only moved forward, through every stage, with progress inside them.
    positions = [position for _, _, position, _ in first_run.transitions]
    assert positions == sorted(positions)
    stages_running = [stage for status, stage, _, _ in first_run.transitions if status == "RUNNING"]
    assert sorted(set(stages_running), key=stages_running.index) == ["sfm", "train", "compress"]
    assert any(0 < percent < 100 for status, _, _, percent in first_run.transitions if status == "RUNNING")
    assert first_run.transitions[-1][0] == "SUCCEEDED"

    # The .ply and the .sog exist and decode.
    s3 = boto3.client("s3")
    ply = tmp_path / "splat.ply"
    bucket, key = record.artifacts["ply"].removeprefix("s3://").split("/", 1)
    s3.download_file(bucket, key, str(ply))
    splats = read_ply(ply)
    assert splats.means.shape[0] > 100
    sog = tmp_path / "scene.sog"
    bucket, key = record.artifacts["sog"].removeprefix("s3://").split("/", 1)
    s3.download_file(bucket, key, str(sog))
    decompress = pytest.importorskip("spaceport_compress.cli").decompress_main
    assert decompress([str(sog), str(tmp_path / "back.ply")]) == 0
    assert read_ply(tmp_path / "back.ply").means.shape[0] == splats.means.shape[0]

    # One email, linking the job's page and its viewer in the web app (their pages are the web
    # tests' part); the API answer the job page reads links the results, which download.
    emails = [m for m in stack.aws.sent_emails() if m["To"] == EMAIL]
    assert len(emails) == 1
    html = next(p for p in emails[0].walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
    links = {link.replace("&amp;", "&") for link in re.findall(r'href="([^"]+)"', html)}
    job_id = record.job_id
    [share] = [link for link in links if "/view/share/" in link]
    assert links == {f"{stack.gateway_url}/jobs/{job_id}", f"{stack.gateway_url}/view/{job_id}", share}
    # The share link opens the scene for anyone, streamed: its index and chunks by relative path.
    token = share.rsplit("/", 1)[1]
    with urllib.request.urlopen(f"{stack.gateway_url}/share/{token}", timeout=10) as response:
        public = json.loads(response.read())
    assert EMAIL not in json.dumps(public) and "s3://" not in json.dumps(public)
    with urllib.request.urlopen(public["links"]["streamed"], timeout=10) as response:
        index = json.loads(response.read())
    chunk = urllib.parse.urljoin(public["links"]["streamed"], index["filenames"][0])
    with urllib.request.urlopen(chunk, timeout=10) as response:
        assert json.loads(response.read()), "a chunk's meta.json, fetched relative to the index"
    with urllib.request.urlopen(urllib.parse.urljoin(public["links"]["streamed"], "../scene.sog"), timeout=10) as r:
        assert r.read() == sog.read_bytes()
    fetched = {}
    for name, link in api.get_job(job_id)["links"].items():
        if link.startswith(stack.aws.endpoint):
            with urllib.request.urlopen(link, timeout=10) as response:
                fetched[name] = response.read()
    assert fetched["sog"] == sog.read_bytes()
    assert fetched["ply"] == ply.read_bytes()


def test_a_malformed_message_goes_to_the_dlq_without_blocking_its_batch(stack, first_run):
    sqs = boto3.client("sqs")
    dlq = stack.resources.dead_letter_queue_urls["sfm"]
    found = wait_for(
        lambda: sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages"),
        30,
        what="the malformed message in the sfm dead-letter queue",
    )
    assert [m["Body"] for m in found] == [first_run.malformed_body]
    # It shared its first batch with the job's JobRequested, which went through at once.
    deliveries = stack.workers["sfm"].deliveries
    assert deliveries, "the resumed sfm worker handled the batch"
    first_batch = [d for d in deliveries if d.handler_started_at == deliveries[0].handler_started_at]
    assert {d.detail_type for d in first_batch} == {"JobRequested"}  # the malformed one carries the same type
    assert len(first_batch) == 2
    assert first_run.record.status is JobStatus.SUCCEEDED


def test_a_worker_killed_mid_job_is_redelivered_and_the_job_runs_once(stack, observer, first_run):
    dead = first_run.dead_train_worker
    assert not dead.is_alive() and dead.batches_handled == 1
    replacement = stack.workers["train"]
    assert replacement is not dead
    redelivered = [d for d in replacement.deliveries if d.detail_type == "SfmCompleted"]
    assert len(redelivered) == 1, "the SfmCompleted the dead worker never acknowledged comes back"
    assert job_names(stack.options.workdir, f"spaceport-local-train-{first_run.job_id}-r1-") == [
        f"spaceport-local-train-{first_run.job_id}-r1-a1"
    ]
    completions = [e for e in observer.pipeline_events(first_run.job_id) if e["detail-type"] == "TrainingCompleted"]
    assert len(completions) == 1
    assert len([m for m in stack.aws.sent_emails() if m["To"] == EMAIL]) == 1


def test_run_outputs_and_status_are_saved_for_the_user(stack, first_run, tmp_path, capsys):
    from spaceport.local.commands import status_main
    from spaceport.local.results import save_outputs

    out_dir = save_outputs(first_run.record, tmp_path, stack.aws.endpoint)
    assert out_dir == tmp_path / first_run.job_id
    names = {p.name for p in out_dir.iterdir()}
    assert {"scene.sog", "scene.spz", "scene.glb", "splat.ply", "job.json", "email.eml", "email.html"} <= names
    assert first_run.job_id in (out_dir / "email.html").read_text()
    # Without a running `spaceport serve`, status reads the saved record.
    assert status_main([first_run.job_id, "--json", "--out", str(tmp_path)]) == 0
    assert JobRecord.model_validate_json(capsys.readouterr().out).status is JobStatus.SUCCEEDED

    # After the stack is gone, `spaceport view` serves the saved run as the gateway did: the job
    # page's API answer, with links to the saved files, and the email's links on the same paths.
    import json

    from spaceport.local.aws import free_port
    from spaceport.local.results import SavedResultsServer

    server = SavedResultsServer(tmp_path, free_port(), web_dist=None).start()
    try:
        with urllib.request.urlopen(f"{server.base_url}/jobs/{first_run.job_id}", timeout=10) as response:
            view = json.loads(response.read())
        assert view["status"] == "SUCCEEDED" and view["links"]["viewer"] == f"{server.base_url}/view/{first_run.job_id}"
        assert view["flightPath"], "the flight path, from the saved SfM report"
        with urllib.request.urlopen(view["links"]["sog"], timeout=10) as response:
            assert response.read() == (out_dir / "scene.sog").read_bytes()
        for outside in (f"/files/{first_run.job_id}/..%2Fjob.json", "/jobs/nosuchjob", "/files/x/y"):
            with pytest.raises(urllib.error.HTTPError) as missing:
                urllib.request.urlopen(server.base_url + outside, timeout=10)
            assert missing.value.code == 404
    finally:
        server.stop()


def test_archive_replay_sends_the_window_again_and_changes_nothing(stack, observer, first_run):
    from spaceport.local.client import replay_archive

    jobs_before = job_names(stack.options.workdir, "spaceport-")
    emails_before = len(stack.aws.sent_emails())
    position_before = stack_record(stack, first_run.job_id).position
    # A window before the job replays none of its events (moto needs the runtime's window fix for this).
    assert (
        replay_archive(first_run.posted_at - timedelta(hours=2), first_run.posted_at - timedelta(hours=1))
        == "COMPLETED"
    )
    assert observer.pipeline_events(first_run.job_id, replayed=True) == []
    # The job's window replays all of it; every consumer sees a duplicate and does nothing.
    assert replay_archive(first_run.posted_at - timedelta(seconds=2), datetime.now(UTC)) == "COMPLETED"
    replayed = observer.pipeline_events(first_run.job_id, replayed=True)
    assert [e["detail-type"] for e in replayed] == PIPELINE_ORDER
    # Replayed to notify's rules only (FilterArns): the observer's rule is not among them.
    assert replay_archive(first_run.posted_at - timedelta(seconds=2), datetime.now(UTC), ["notify"]) == "COMPLETED"
    assert len(observer.pipeline_events(first_run.job_id, replayed=True)) == len(replayed)
    assert stack.wait_until_idle(timeout_s=30)
    assert job_names(stack.options.workdir, "spaceport-") == jobs_before
    assert len(stack.aws.sent_emails()) == emails_before
    assert stack_record(stack, first_run.job_id).position == position_before


def test_reprocess_from_train_makes_a_new_run_and_keeps_the_first(stack, observer, api, first_run):
    s3 = boto3.client("s3")
    config = stack.config

    def snapshot(run_id: str) -> dict[str, str]:
        objects = {}
        for bucket in (config.sfm_bucket, config.train_bucket, config.compressed_bucket):
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{first_run.job_id}/{run_id}/")
            objects.update({f"{bucket}/{o['Key']}": o["ETag"] for page in pages for o in page.get("Contents", [])})
        return objects

    before = snapshot("r1")
    answer = api.reprocess(first_run.job_id, "train", {"steps": 5})
    run_id = answer.get("runId") or answer.get("run_id")
    assert run_id == "r2"
    record, _ = _follow(stack, first_run.job_id, "r2", timeout_s=240)
    assert stack.wait_until_idle(timeout_s=30)

    assert record.status is JobStatus.SUCCEEDED, record.error
    assert [run.run_id for run in record.runs] == ["r1", "r2"]
    assert record.runs[1].from_stage.value == "train"
    assert snapshot("r1") == before, "run 1's outputs were changed by run 2"
    after = snapshot("r2")
    assert any(key.endswith("/r2/scene.sog") for key in after)
    assert not any(key.startswith(f"{config.sfm_bucket}/") for key in after), "run 2 must reuse run 1's SfM"
    assert job_names(stack.options.workdir, f"spaceport-local-sfm-{first_run.job_id}-r2-") == []
    r2_events = [e["detail-type"] for e in observer.pipeline_events(first_run.job_id) if e["detail"]["run_id"] == "r2"]
    assert r2_events == ["JobRequested", "StageStarted", "TrainingCompleted", "StageStarted", "CompressionCompleted"]
    assert len([m for m in stack.aws.sent_emails() if m["To"] == EMAIL]) == 2


def test_cancel_stops_the_running_job_and_nothing_follows(stack, api, sample_capture):
    job_id = api.create_job(api.upload(sample_capture.zip_path), OPTIONS)
    name = f"spaceport-local-sfm-{job_id}-r1-a1"
    log = stack.runner.log_path(name)
    wait_for(lambda: log.exists() and "spaceport-progress" in log.read_text(), 60, what="the sfm job running")
    api.cancel(job_id)
    record, _ = _follow(stack, job_id, "r1", timeout_s=60)
    assert record.status is JobStatus.CANCELLED
    assert stack.runner.wait(name, timeout_s=40).status == "Stopped"
    assert stack.wait_until_idle(timeout_s=30)
    assert job_names(stack.options.workdir, f"spaceport-local-train-{job_id}-") == []
    assert stack_record(stack, job_id).status is JobStatus.CANCELLED


def _kill_when_running(stack, name: str) -> None:
    """What the OS does to a job that runs out of memory: SIGKILL, no report, no goodbye."""
    import os
    import signal

    wait_for(lambda: stack.runner.log_path(name).exists() and stack.runner.describe(name).process, 60, what=name)
    os.killpg(stack.runner.describe(name).process.pid, signal.SIGKILL)


def test_a_job_the_machine_kills_ends_its_run_in_plain_words(stack, api, sample_capture, first_run):
    """No report, so each service asks S3 for it and is told it is missing (its role may list its
    bucket); the run fails once, with SageMaker's reason, and the user is told."""
    job_id = api.create_job(api.upload(sample_capture.zip_path), OPTIONS)
    _kill_when_running(stack, f"spaceport-local-sfm-{job_id}-r1-a1")
    record, _ = _follow(stack, job_id, "r1", timeout_s=60)
    assert (record.status, record.error.stage.value) == (JobStatus.FAILED, "sfm")
    assert "exited with code -9" in record.error.message
    for run, stage in (("r3", "train"), ("r4", "compress")):
        api.reprocess(first_run.job_id, stage, {})
        _kill_when_running(stack, f"spaceport-local-{stage}-{first_run.job_id}-{run}-a1")
        record, _ = _follow(stack, first_run.job_id, run, timeout_s=60)
        assert (record.status, record.error.stage.value) == (JobStatus.FAILED, stage)
    assert stack.wait_until_idle(timeout_s=30)


def test_the_sweeper_fails_a_job_nothing_moved_and_tells_its_user(stack, sample_capture):
    from spaceport.local.client import GatewayClient
    from spaceport.local.cognito import sign_in_user

    stalled = GatewayClient(stack.gateway_url, sign_in_user(stack.resources.user_pool, "stalled@example.com").id_token)
    stack.pause_worker("sfm")
    try:
        job_id = stalled.create_job(stalled.upload(sample_capture.zip_path), OPTIONS)
        long_ago = (datetime.now(UTC) - timedelta(days=3)).isoformat()
        boto3.client("dynamodb").update_item(
            TableName=stack.config.jobs_table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression="SET updated_at = :then",
            ExpressionAttributeValues={":then": {"S": long_ago}},
        )
        stack.sweep_once()
        record = stack_record(stack, job_id)
        assert (record.status, record.error.code) == (JobStatus.FAILED, "stalled")
        wait_for(lambda: any(m["To"] == "stalled@example.com" for m in stack.aws.sent_emails()), 30, what="the email")
    finally:
        stack.resume_worker("sfm")
    assert stack.wait_until_idle(timeout_s=30)
    assert stack_record(stack, job_id).status is JobStatus.FAILED, "the late JobRequested changes nothing"
    assert job_names(stack.options.workdir, f"spaceport-local-sfm-{job_id}-") == []


def test_a_user_lists_their_jobs(stack, api, first_run):
    status, jobs = api.request("GET", "/jobs")
    assert status == 200 and first_run.job_id in [job["jobId"] for job in jobs["jobs"]]


# --- IAM: every unit ran under its own role, with the policy that deploys


def _unit_decisions(stack) -> dict[str, list]:
    from spaceport.contracts.units import UNITS

    by_role = {unit.role_name(stack.config.deployment): name for name, unit in UNITS.items()}
    found: dict[str, list] = {}
    for decision in stack.aws.iam.decisions:
        found.setdefault(by_role[decision.role], []).append(decision)
    return found


def test_every_unit_called_aws_with_its_own_role_and_nothing_was_refused(stack, first_run):
    from spaceport.contracts.units import UNITS

    stack.sweep_once()
    decisions = _unit_decisions(stack)
    assert set(decisions) == set(UNITS), f"units that made no call: {set(UNITS) - set(decisions)}"
    refused = [d for d in stack.aws.iam.decisions if not d.allowed]
    assert refused == [], refused


def test_lambda_and_job_logs_reach_cloudwatch_with_each_units_role(stack, first_run):
    logs = boto3.client("logs")
    groups = {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}
    deployment = stack.config.deployment
    assert {
        f"/aws/lambda/spaceport-gateway-{deployment}",
        f"/aws/lambda/spaceport-sfm-{deployment}-consume",
        f"/aws/lambda/spaceport-notify-{deployment}-consume",
        "/aws/sagemaker/ProcessingJobs",
        "/aws/sagemaker/TrainingJobs",
    } <= groups
    name = f"spaceport-local-sfm-{first_run.job_id}-r1-a1"
    [stream] = logs.describe_log_streams(logGroupName="/aws/sagemaker/ProcessingJobs", logStreamNamePrefix=name)[
        "logStreams"
    ]
    lines = [
        e["message"]
        for e in logs.get_log_events(
            logGroupName="/aws/sagemaker/ProcessingJobs", logStreamName=stream["logStreamName"]
        )["events"]
    ]
    assert any("spaceport-progress" in line for line in lines) and lines[-1] == "Completed"


def test_every_statement_of_every_policy_is_needed(stack, first_run):
    """Each statement allowed some call of this module's runs that no other statement allowed:
    without it that call is refused, and the test that made it fails. The statements only a run
    trained in blocks needs are proven by one (tests/blocks/test_local_run.py), not here."""
    from spaceport.contracts.units import BLOCK_RUN_GRANTS, UNITS
    from spaceport.local.iam import needed_statements

    needed = needed_statements(stack.aws.iam.decisions)
    unneeded = {
        name: sorted(
            {g.sid for g in unit.grants}
            - BLOCK_RUN_GRANTS.get(name, frozenset())
            - needed.get(unit.role_name(stack.config.deployment), set())
        )
        for name, unit in UNITS.items()
    }
    unproven = {name: sids for name, sids in unneeded.items() if sids}
    assert not unproven, f"statements no call needed: {unproven}"


def test_the_local_account_opens_to_the_operators_key_and_to_nobody_else(stack, tmp_path):
    import json

    from botocore.exceptions import ClientError

    from spaceport.local.aws import REGION
    from spaceport.local.client import write_aws_state

    path = write_aws_state(tmp_path, stack.aws.endpoint, REGION, stack.resources.operator)
    state = json.loads(path.read_text())
    assert path.stat().st_mode & 0o777 == 0o600

    def sqs(key: str, secret: str):
        session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION)
        return session.client("sqs", endpoint_url=state["endpoint"])

    queues = sqs(state["accessKeyId"], state["secretAccessKey"]).list_queues()["QueueUrls"]
    assert any(url.endswith("/spaceport-local-sfm") for url in queues)
    with pytest.raises(ClientError) as refused:
        sqs("AKIANOBODY0000000000", "nothing").list_queues()
    assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_a_statement_taken_out_of_a_policy_refuses_what_it_allowed(stack, api, first_run):
    """The enforcement itself: the gateway without its job-records statement cannot show a job."""
    import json

    from spaceport.contracts.units import UNITS
    from spaceport.local.client import GatewayRequestError
    from spaceport.local.provision import UNIT_POLICY

    iam = boto3.client("iam")
    role = UNITS["gateway"].role_name(stack.config.deployment)
    policy = iam.get_role_policy(RoleName=role, PolicyName=UNIT_POLICY)["PolicyDocument"]
    without = {**policy, "Statement": [s for s in policy["Statement"] if s["Sid"] != "JobRecords"]}
    iam.put_role_policy(RoleName=role, PolicyName=UNIT_POLICY, PolicyDocument=json.dumps(without))
    try:
        with pytest.raises(GatewayRequestError) as refused:
            api.get_job(first_run.job_id)
        assert refused.value.status == 500
        # The services go on polling their queues meanwhile: the gateway's own last decision.
        last = [decision for decision in stack.aws.iam.decisions if decision.role == role][-1]
        assert (last.role, last.action, last.allowed) == (role, "dynamodb:GetItem", False)
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=UNIT_POLICY, PolicyDocument=json.dumps(policy))
    assert api.get_job(first_run.job_id)["jobId"] == first_run.job_id
