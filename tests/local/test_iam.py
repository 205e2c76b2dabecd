"""The local IAM's two halves on their own: what a request asks for, and what a policy allows.

The whole runtime under enforcement is in ``test_pipeline.py``; these pin the rules it applies.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest

from spaceport.local.iam import Check, Decision, Request, checks_for, evaluate, needed_statements

REGION = "us-east-1"


def request(service: str, body: dict | str = "", target: str = "", method: str = "POST", path: str = "/", **headers):
    raw = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
    names = {name.lower().replace("_", "-"): value for name, value in headers.items()}
    if target:
        names["x-amz-target"] = target
    return Request(method, path, {}, names, raw, service, REGION)


def test_a_training_job_needs_its_action_the_pass_of_its_role_and_tagging():
    body = {
        "TrainingJobName": "spaceport-local-train-abc-r1-a1",
        "RoleArn": "arn:aws:iam::123456789012:role/spaceport-train-job-local",
        "Tags": [{"Key": "spaceport:job", "Value": "abc"}],
    }
    checks = checks_for(request("sagemaker", body, "SageMaker.CreateTrainingJob"))
    job = "arn:aws:sagemaker:us-east-1:123456789012:training-job/spaceport-local-train-abc-r1-a1"
    assert checks == [
        Check("sagemaker:CreateTrainingJob", job),
        Check("iam:PassRole", body["RoleArn"], {"iam:PassedToService": "sagemaker.amazonaws.com"}),
        Check("sagemaker:AddTags", job),
    ]


def test_dynamodb_calls_name_their_table_or_index_and_transactions_each_table():
    query = checks_for(request("dynamodb", {"TableName": "jobs", "IndexName": "by-status"}, "DynamoDB_20120810.Query"))
    assert query == [Check("dynamodb:Query", "arn:aws:dynamodb:us-east-1:123456789012:table/jobs/index/by-status")]
    items = {"TransactItems": [{"Put": {"TableName": "a"}}, {"Update": {"TableName": "b"}}]}
    transaction = checks_for(request("dynamodb", items, "DynamoDB_20120810.TransactWriteItems"))
    assert [c.resource.rsplit("/", 1)[-1] for c in transaction] == ["a", "b"]


def test_sqs_batches_are_their_single_actions_and_events_name_each_bus():
    delete = checks_for(
        request("sqs", {"QueueUrl": "http://x/123456789012/spaceport-local-sfm"}, "AmazonSQS.DeleteMessageBatch")
    )
    assert delete == [Check("sqs:DeleteMessage", "arn:aws:sqs:us-east-1:123456789012:spaceport-local-sfm")]
    entries = {"Entries": [{"EventBusName": "spaceport-local"}, {"EventBusName": "spaceport-local"}, {}]}
    buses = [c.resource for c in checks_for(request("events", entries, "AWSEvents.PutEvents"))]
    assert buses == [
        "arn:aws:events:us-east-1:123456789012:event-bus/default",
        "arn:aws:events:us-east-1:123456789012:event-bus/spaceport-local",
    ]


def test_an_email_is_authorised_on_its_senders_identity_with_the_from_address():
    raw = base64.b64encode(b"From: Spaceport <photos@example.org>\r\nTo: a@example.com\r\n\r\nhi").decode()
    form = urlencode({"Action": "SendRawEmail", "RawMessage.Data": raw})
    [check] = checks_for(request("ses", form, content_type="application/x-www-form-urlencoded"))
    assert check == Check(
        "ses:SendRawEmail",
        "arn:aws:ses:us-east-1:123456789012:identity/photos@example.org",
        {"ses:FromAddress": "photos@example.org"},
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "expected"),
    [
        ("GET", "/b/k/x.json", {}, {}, [("s3:GetObject", "arn:aws:s3:::b/k/x.json")]),
        ("HEAD", "/b/k", {}, {}, [("s3:GetObject", "arn:aws:s3:::b/k")]),
        ("GET", "/b", {"list-type": ["2"]}, {}, [("s3:ListBucket", "arn:aws:s3:::b")]),
        ("PUT", "/b/k", {"partNumber": ["1"], "uploadId": ["u"]}, {}, [("s3:PutObject", "arn:aws:s3:::b/k")]),
        ("DELETE", "/b/k", {"uploadId": ["u"]}, {}, [("s3:AbortMultipartUpload", "arn:aws:s3:::b/k")]),
        (
            "PUT",
            "/b/copy",
            {},
            {"x-amz-copy-source": "/src/key%201"},
            [("s3:PutObject", "arn:aws:s3:::b/copy"), ("s3:GetObject", "arn:aws:s3:::src/key 1")],
        ),
        ("PUT", "/b", {"cors": [""]}, {}, [("s3:PutBucketCORS", "arn:aws:s3:::b")]),
    ],
)
def test_s3_requests_become_the_actions_s3_authorises(method, path, query, headers, expected):
    checks = checks_for(Request(method, path, query, headers, b"", "s3", REGION))
    assert [(c.action, c.resource) for c in checks] == expected


def test_a_browsers_presigned_post_is_a_put_of_the_key_in_its_form():
    boundary = "xyz"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\nuploads/u1/photos.zip\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.zip"\r\n\r\nPK\r\n'
        f"--{boundary}--\r\n"
    )
    content_type = f"multipart/form-data; boundary={boundary}"
    [check] = checks_for(Request("POST", "/uploads", {}, {"content-type": content_type}, body.encode(), "s3", REGION))
    assert check == Check("s3:PutObject", "arn:aws:s3:::uploads/uploads/u1/photos.zip")


POLICY = {
    "Statement": [
        {"Sid": "Objects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:Put*"], "Resource": "arn:aws:s3:::b/*"},
        {"Sid": "NotSecrets", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::b/secret/*"},
        {
            "Sid": "PassToSageMaker",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "arn:aws:iam::1:role/job",
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        },
        {
            "Sid": "OneChar",
            "Effect": "Allow",
            "Action": "logs:PutLogEvents",
            "Resource": "arn:aws:logs:r:1:log-group:g?",
        },
    ]
}


@pytest.mark.parametrize(
    ("check", "allowed"),
    [
        (Check("s3:GetObject", "arn:aws:s3:::b/a/b.json"), True),
        (Check("S3:putobject", "arn:aws:s3:::b/a"), True),  # actions are case-insensitive
        (Check("s3:DeleteObject", "arn:aws:s3:::b/a"), False),
        (Check("s3:GetObject", "arn:aws:s3:::b2/a"), False),
        (Check("s3:GetObject", "arn:aws:s3:::b/secret/k"), False),  # an explicit deny wins
        (Check("iam:PassRole", "arn:aws:iam::1:role/job", {"iam:PassedToService": "sagemaker.amazonaws.com"}), True),
        (Check("iam:PassRole", "arn:aws:iam::1:role/job", {"iam:PassedToService": "lambda.amazonaws.com"}), False),
        (Check("iam:PassRole", "arn:aws:iam::1:role/job"), False),  # a missing key fails its condition
        (Check("logs:PutLogEvents", "arn:aws:logs:r:1:log-group:g1"), True),
        (Check("logs:PutLogEvents", "arn:aws:logs:r:1:log-group:g12"), False),
    ],
)
def test_the_evaluator_applies_wildcards_conditions_and_denies(check, allowed):
    assert evaluate([POLICY], check)[0] is allowed


def test_a_statement_is_needed_when_it_alone_allowed_some_call():
    decisions = [
        Decision("r", "s3:GetObject", "x", True, ("A",)),
        Decision("r", "s3:GetObject", "y", True, ("A", "B")),  # either would do: proves neither
        Decision("r", "s3:PutObject", "y", False, ()),
    ]
    assert needed_statements(decisions) == {"r": {"A"}}
