"""IAM on the local AWS: every call a unit's role makes is checked against the policy that deploys.

moto's own access control checks a call's action against a principal's policies, but matches
resources only for S3 (every other service's calls are checked against ``*``, which no
resource-scoped statement matches) and ignores conditions. So the local runtime checks each
request itself, in front of the moto server (:class:`IamEnforcer`):

1. the request's access key (SigV4 ``Authorization`` header, or a presigned URL's
   ``X-Amz-Credential``) names its principal: an assumed role (``sts:AssumeRole``), an IAM user,
   or the account's root (the runtime's own harness, as an operator's admin);
2. the request becomes the authorisation checks AWS makes for it (:func:`checks_for`): an
   action, a resource ARN and the condition keys AWS supplies. One request may need several, as
   in AWS: ``CreateTrainingJob`` also needs ``iam:PassRole`` on its role (with
   ``iam:PassedToService``) and ``sagemaker:AddTags`` when it is tagged; a copy needs
   ``s3:GetObject`` on its source;
3. each check is evaluated against the principal's inline policies (:func:`evaluate`: actions and
   resources with wildcards, ``StringEquals``/``StringLike``/``ArnLike``/``ArnEquals``/``Bool``
   conditions, explicit denies); a refused check answers ``AccessDenied`` in the service's own
   error format, before moto sees the request;
4. an S3 ``GET``/``HEAD`` of a missing key answers 403, not 404, to a principal without
   ``s3:ListBucket`` on the bucket, as S3 does;
5. expired temporary credentials answer ``ExpiredToken``.

The control plane's tests run moto in their own process (``mock_aws``), with no server between:
:class:`InProcessIam` makes the same checks in botocore's ``before-send`` event of each unit's
session, so the handlers there run under their units' roles too.

Every decision about a role is recorded (:class:`Decision`: the role, the action, the resource,
whether it was allowed, and the statements that allowed it), so a test can show which statement
each call needed.

Modelled, per service (action from the ``X-Amz-Target`` header, the query's ``Action`` or, for S3,
the method and path): S3 (objects, multipart parts, copies, listings, bucket settings, presigned
URLs and POST forms), DynamoDB (``TableName``, indexes, batch and transaction items), EventBridge
(``PutEvents`` per entry's bus; rules, archives and replays by name), SQS (by ``QueueUrl`` or
``QueueName``), SageMaker (processing and training jobs by name, with ``PassRole`` and
``AddTags``), SES (the sender's identity, with ``ses:FromAddress``), CloudWatch Logs (groups and
streams), ECR (repositories; ``GetAuthorizationToken`` on ``*``), STS (``AssumeRole`` on the
role; ``GetCallerIdentity`` always). A role's call to anything else is refused and recorded
with the resource ``*``, so a new kind of call shows up in the first test that makes it.

>>> policy = {"Statement": [{"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"],
...                          "Resource": ["arn:aws:s3:::photos/*"]}]}
>>> evaluate([policy], Check("s3:GetObject", "arn:aws:s3:::photos/a.zip"))
(True, ('Read',))
>>> evaluate([policy], Check("s3:PutObject", "arn:aws:s3:::photos/a.zip"))
(False, ())
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# The access key the runtime's own harness (provisioning, tests, operators' tools) signs with:
# the account's root, which may do anything, as an administrator can.
ROOT_ACCESS_KEY = "testing"
LOCAL_ACCOUNT_ID = "123456789012"
PARTITION = "aws"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


@dataclass(frozen=True)
class Check:
    """One authorisation AWS makes: an action on a resource, with the condition keys it supplies."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What the local IAM decided about one check of one role's request."""

    role: str
    action: str
    resource: str
    allowed: bool
    statements: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "action": self.action,
            "resource": self.resource,
            "allowed": self.allowed,
            "statements": list(self.statements),
        }


# --- the policy evaluator ----------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    # IAM wildcards: * any run of characters, ? one character (fnmatch's [] are not IAM's).
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


_CONDITION_TESTS: Mapping[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringLike": lambda expected, actual: _matches(expected, actual),
    "ArnEquals": lambda expected, actual: expected == actual,
    "ArnLike": lambda expected, actual: _matches(expected, actual),
    "Bool": lambda expected, actual: expected.lower() == actual.lower(),
}


def _conditions_hold(condition: Mapping[str, Any] | None, context: Mapping[str, str]) -> bool:
    for operator, tests in (condition or {}).items():
        test = _CONDITION_TESTS.get(operator)
        if test is None:
            return False  # an operator this evaluator does not know never grants anything
        for key, expected in tests.items():
            actual = context.get(key)
            if actual is None or not any(test(str(value), actual) for value in _as_list(expected)):
                return False
    return True


def _statement_applies(statement: Mapping[str, Any], check: Check) -> bool:
    actions = _as_list(statement.get("Action"))
    resources = _as_list(statement.get("Resource"))
    return (
        any(_matches(pattern, check.action, case_sensitive=False) for pattern in actions)
        and any(_matches(pattern, check.resource) for pattern in resources)
        and _conditions_hold(statement.get("Condition"), check.context)
    )


def evaluate(policies: Iterable[Mapping[str, Any]], check: Check) -> tuple[bool, tuple[str, ...]]:
    """Whether ``policies`` allow ``check`` (an explicit deny wins), and the statements that allow it."""
    allowing: list[str] = []
    for policy in policies:
        for index, statement in enumerate(_as_list(policy.get("Statement"))):
            if not _statement_applies(statement, check):
                continue
            if statement.get("Effect") == "Deny":
                return False, ()
            allowing.append(str(statement.get("Sid") or f"#{index}"))
    return bool(allowing), tuple(allowing)


# --- what a request asks for -------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """The parts of an HTTP request to the local AWS that authorisation reads."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    service: str
    region: str

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def form(self) -> dict[str, str]:
        fields = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[0] for name, values in fields.items()}

    def arn(self, service: str, rest: str, region: bool = True) -> str:
        return f"arn:{PARTITION}:{service}:{self.region if region else ''}:{LOCAL_ACCOUNT_ID}:{rest}"


def _s3_checks(request: Request) -> list[Check]:
    parts = unquote(request.path).lstrip("/").split("/", 1)
    bucket = parts[0]
    key = parts[1] if len(parts) > 1 else ""
    query, method = request.query, request.method
    bucket_arn = f"arn:{PARTITION}:s3:::{bucket}"
    if method == "POST" and not key and "delete" not in query:
        # A browser's presigned POST form: the object key is one of its fields.
        key = _form_field(request, "key")
        return [Check("s3:PutObject", f"{bucket_arn}/{key}")]
    if key:
        obj = f"{bucket_arn}/{key}"
        if method in ("GET", "HEAD"):
            return (
                [Check("s3:GetObject", obj)] if "uploadId" not in query else [Check("s3:ListMultipartUploadParts", obj)]
            )
        if method == "DELETE":
            return [Check("s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject", obj)]
        checks = [Check("s3:PutObject", obj)]
        source = request.header("x-amz-copy-source")
        if source:
            checks.append(Check("s3:GetObject", f"arn:{PARTITION}:s3:::{unquote(source).lstrip('/').split('?')[0]}"))
        return checks
    settings = {
        "cors": "BucketCORS",
        "versioning": "BucketVersioning",
        "lifecycle": "LifecycleConfiguration",
        "policy": "BucketPolicy",
        "tagging": "BucketTagging",
        "notification": "BucketNotification",
        "encryption": "EncryptionConfiguration",
        "publicAccessBlock": "BucketPublicAccessBlock",
    }
    for name, suffix in settings.items():
        if name in query:
            verb = {"GET": "Get", "PUT": "Put", "DELETE": "Put"}.get(method, "Get")
            return [Check(f"s3:{verb}{suffix}", bucket_arn)]
    if method == "PUT":
        return [Check("s3:CreateBucket", bucket_arn)]
    if method == "DELETE":
        return [Check("s3:DeleteBucket", bucket_arn)]
    if method == "POST":  # ?delete: several objects
        return [Check("s3:DeleteObject", f"{bucket_arn}/*")]
    if "location" in query:
        return [Check("s3:GetBucketLocation", bucket_arn)]
    if "uploads" in query:
        return [Check("s3:ListBucketMultipartUploads", bucket_arn)]
    if not bucket:
        return [Check("s3:ListAllMyBuckets", "*")]
    return [Check("s3:ListBucket", bucket_arn)]


def _form_field(request: Request, name: str) -> str:
    content_type = request.header("content-type")
    if not content_type.startswith("multipart/form-data"):
        return request.form().get(name, "")
    message = message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.body)
    for part in message.walk():
        if part.get_param("name", header="content-disposition") == name:
            payload = part.get_payload(decode=True)
            return payload.decode() if isinstance(payload, bytes) else ""
    return ""


def _dynamodb_checks(request: Request, action: str) -> list[Check]:
    body = request.json()
    tables: list[str] = []
    if "TableName" in body:
        table = str(body["TableName"])
        index = body.get("IndexName")
        tables.append(f"table/{table}/index/{index}" if index else f"table/{table}")
    tables += [f"table/{name}" for name in (body.get("RequestItems") or {})]
    for item in body.get("TransactItems") or []:
        for operation in item.values():
            if isinstance(operation, dict) and "TableName" in operation:
                tables.append(f"table/{operation['TableName']}")
    # A transaction's parts are authorised as the plain writes they are.
    plain = {"TransactWriteItems": "PutItem", "TransactGetItems": "GetItem"}.get(action, action)
    return [Check(f"dynamodb:{plain}", request.arn("dynamodb", table)) for table in tables or ["*"]]


def _events_checks(request: Request, action: str) -> list[Check]:
    body = request.json()

    def bus(name: Any) -> str:
        text = str(name or "default")
        return text if text.startswith("arn:") else request.arn("events", f"event-bus/{text}")

    if action == "PutEvents":
        buses = {bus(entry.get("EventBusName")) for entry in body.get("Entries") or []}
        return [Check("events:PutEvents", arn) for arn in sorted(buses)]
    if action in ("DescribeArchive", "StartReplay", "CreateArchive"):
        name = body.get("ArchiveName") or str(body.get("EventSourceArn", "")).rsplit("/", 1)[-1]
        return [Check(f"events:{action}", request.arn("events", f"archive/{name}"))]
    if action in ("DescribeReplay", "CancelReplay"):
        return [Check(f"events:{action}", request.arn("events", f"replay/{body.get('ReplayName', '')}"))]
    if "Rule" in body or "Name" in body:
        rule = body.get("Rule") or body.get("Name")
        bus_name = body.get("EventBusName")
        rest = f"rule/{bus_name}/{rule}" if bus_name and bus_name != "default" else f"rule/{rule}"
        return [Check(f"events:{action}", request.arn("events", rest))]
    return [Check(f"events:{action}", "*")]


def _sqs_checks(request: Request, action: str) -> list[Check]:
    body = request.json() if request.header("x-amz-target") else request.form()
    name = str(body.get("QueueName") or str(body.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1] or "*")
    # A batch is authorised as its single action (DeleteMessageBatch needs sqs:DeleteMessage).
    single = action.removesuffix("Batch") if action in _SQS_BATCHES else action
    return [Check(f"sqs:{single}", request.arn("sqs", name) if name != "*" else "*")]


_SQS_BATCHES = frozenset({"DeleteMessageBatch", "ChangeMessageVisibilityBatch", "SendMessageBatch"})


_SAGEMAKER_JOBS = {"TrainingJobName": "training-job", "ProcessingJobName": "processing-job"}


def _sagemaker_checks(request: Request, action: str) -> list[Check]:
    body = request.json()
    for name_field, kind in _SAGEMAKER_JOBS.items():
        if name_field in body:
            job = request.arn("sagemaker", f"{kind}/{str(body[name_field]).lower()}")
            checks = [Check(f"sagemaker:{action}", job)]
            if action.startswith("Create"):
                if body.get("RoleArn"):
                    passed = {"iam:PassedToService": "sagemaker.amazonaws.com"}
                    checks.append(Check("iam:PassRole", str(body["RoleArn"]), passed))
                if body.get("Tags"):
                    checks.append(Check("sagemaker:AddTags", job))
            return checks
    return [Check(f"sagemaker:{action}", "*")]


def _ses_checks(request: Request, action: str) -> list[Check]:
    form = request.form()
    sender = form.get("Source", "")
    if not sender and form.get("RawMessage.Data"):
        sender = str(message_from_bytes(base64.b64decode(form["RawMessage.Data"])).get("From", ""))
    address = sender.rsplit("<", 1)[-1].rstrip(">").strip()
    if not address:
        return [Check(f"ses:{action}", "*")]
    return [Check(f"ses:{action}", request.arn("ses", f"identity/{address}"), {"ses:FromAddress": address})]


def _logs_checks(request: Request, action: str) -> list[Check]:
    body = request.json()
    group = body.get("logGroupName")
    if not group:
        return [Check(f"logs:{action}", "*")]
    rest = f"log-group:{group}"
    if body.get("logStreamName"):
        rest += f":log-stream:{body['logStreamName']}"
    elif action == "DescribeLogStreams":
        rest += ":log-stream:*"
    return [Check(f"logs:{action}", request.arn("logs", rest))]


def _ecr_checks(request: Request, action: str) -> list[Check]:
    repository = request.json().get("repositoryName")
    resource = request.arn("ecr", f"repository/{repository}") if repository else "*"
    return [Check(f"ecr:{action}", resource)]


def _sts_checks(request: Request, action: str) -> list[Check]:
    role = request.form().get("RoleArn", "*")
    return [Check(f"sts:{action}", role)]


def checks_for(request: Request) -> list[Check]:
    """The authorisations AWS makes for ``request`` (see the module's list of what is modelled)."""
    if request.service == "s3":
        return _s3_checks(request)
    target = request.header("x-amz-target")
    action = target.rsplit(".", 1)[-1] if target else request.form().get("Action", "")
    handlers: Mapping[str, Callable[[Request, str], list[Check]]] = {
        "dynamodb": _dynamodb_checks,
        "events": _events_checks,
        "sqs": _sqs_checks,
        "sagemaker": _sagemaker_checks,
        "ses": _ses_checks,
        "logs": _logs_checks,
        "ecr": _ecr_checks,
        "sts": _sts_checks,
    }
    handler = handlers.get(request.service)
    if handler is None:
        return [Check(f"{request.service}:{action}", "*")]
    return handler(request, action)


# --- who is asking -----------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Whoever signed a request: ``kind`` is root, role or user; ``name`` the role's or user's."""

    kind: str
    name: str
    policies: tuple[Mapping[str, Any], ...] = ()
    expired: bool = False


def _credential(request: Request) -> tuple[str, str]:
    """The request's access key id and its signing region."""
    scope = request.query.get("X-Amz-Credential", [""])[0]
    if not scope:
        match = re.search(r"Credential=([^,\s]+)", request.header("authorization"))
        scope = match.group(1) if match else ""
    if not scope and request.header("content-type").startswith("multipart/form-data"):
        scope = _form_field(request, "x-amz-credential")
    parts = scope.split("/")
    return parts[0], parts[2] if len(parts) > 2 else ""


def find_principal(access_key: str, account_id: str = LOCAL_ACCOUNT_ID) -> Principal | None:
    """The principal of ``access_key`` in moto's account (``None``: nobody's key)."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    if access_key == ROOT_ACCESS_KEY:
        return Principal("root", "root")
    iam = iam_backends[account_id][PARTITION]
    for assumed in sts_backends[account_id][PARTITION].assumed_roles:
        if assumed.access_key_id == access_key:
            role = iam.get_role(assumed.role_arn.rsplit("/", 1)[-1])
            policies = tuple(_policy(document) for document in role.policies.values())
            expired = assumed.expiration.replace(tzinfo=UTC) < datetime.now(UTC)
            return Principal("role", role.name, policies, expired)
    for user in iam.users.values():
        if any(key.access_key_id == access_key and key.status == "Active" for key in user.access_keys):
            return Principal("user", user.name, tuple(_policy(document) for document in user.policies.values()))
    return None


def _policy(document: Any) -> Mapping[str, Any]:
    if isinstance(document, str):
        document = json.loads(unquote(document) if document.startswith("%7B") else document)
    return document if isinstance(document, dict) else {}


# --- the enforcer in front of moto --------------------------------------------------------


class IamEnforcer:
    """WSGI middleware that refuses what the signer's policies do not allow, and records each decision."""

    def __init__(self, app: WsgiApp, record: Callable[[Decision], None] | None = None) -> None:
        self.app = app
        self.decisions: list[Decision] = []
        self._lock = threading.Lock()
        self._record = record

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        # A chunked body (no length) can be read to its end only when the server says it ends.
        body = environ["wsgi.input"].read(length) if length else b""
        if not length and environ.get("wsgi.input_terminated"):
            body = environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(body)
        request = _request(environ, body)
        access_key, region = _credential(request)
        principal = find_principal(access_key)
        if principal is None:
            return _refuse(
                start_response,
                request,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            )
        if principal.expired:
            return _refuse(
                start_response, request, "ExpiredToken", "The security token included in the request is expired."
            )
        if principal.kind == "root":
            return self.app(environ, start_response)
        request = Request(**{**request.__dict__, "region": region or request.region})
        refused = refused_check(principal, request, self._note)
        if refused is not None:
            return _refuse(start_response, request, "AccessDenied", _denial(principal, refused))
        if request.service == "s3" and request.method in ("GET", "HEAD") and "/" in request.path.lstrip("/"):
            return self._missing_keys_are_forbidden(environ, start_response, request, principal)
        return self.app(environ, start_response)

    def _missing_keys_are_forbidden(
        self, environ: dict[str, Any], start_response: Callable[..., Any], request: Request, principal: Principal
    ) -> Any:
        """S3 tells a missing key (404) only to a principal that may list the bucket; others get 403."""
        answered: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            answered.update(status=status, headers=headers)
            return lambda _: None

        chunks = list(self.app(environ, capture))
        if answered["status"].startswith("404"):
            bucket = unquote(request.path).lstrip("/").split("/", 1)[0]
            listing = Check("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket}")
            allowed, statements = evaluate(principal.policies, listing)
            if principal.kind == "role":
                self._note(Decision(principal.name, listing.action, listing.resource, allowed, statements))
            if not allowed:
                return _refuse(start_response, request, "AccessDenied", "Access Denied")
        start_response(answered["status"], answered["headers"])
        return chunks

    def _note(self, decision: Decision) -> None:
        with self._lock:
            self.decisions.append(decision)
        if self._record is not None:
            self._record(decision)


def refused_check(principal: Principal, request: Request, note: Callable[[Decision], None]) -> Check | None:
    """The first of ``request``'s checks that ``principal``'s policies refuse (``None``: all are allowed).

    Each decision about a role goes to ``note``; root is never checked.
    """
    if principal.kind == "root":
        return None
    for check in checks_for(request):
        allowed, statements = evaluate(principal.policies, check)
        if principal.kind == "role":
            note(Decision(principal.name, check.action, check.resource, allowed, statements))
        if not allowed:
            return check
    return None


def _denial(principal: Principal, check: Check) -> str:
    return (
        f"User: arn:{PARTITION}:sts::{LOCAL_ACCOUNT_ID}:assumed-role/{principal.name} is not authorized "
        f"to perform: {check.action} on resource: {check.resource} because no identity-based policy "
        "allows the action"
    )


def _request(environ: Mapping[str, Any], body: bytes) -> Request:
    headers = {
        name[5:].replace("_", "-").lower(): str(value) for name, value in environ.items() if name.startswith("HTTP_")
    }
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(name):
            headers[name.replace("_", "-").lower()] = str(environ[name])
    return _signed_request(
        str(environ.get("REQUEST_METHOD", "GET")),
        str(environ.get("PATH_INFO", "/")),
        str(environ.get("QUERY_STRING", "")),
        headers,
        body,
    )


def _signed_request(method: str, path: str, query_string: str, headers: dict[str, str], body: bytes) -> Request:
    """A request whose service and region come from its SigV4 credential scope."""
    query = parse_qs(query_string, keep_blank_values=True)
    match = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/", headers.get("authorization", ""))
    scope = (query.get("X-Amz-Credential") or [""])[0].split("/")
    if match:
        region, service = match.group(1), match.group(2)
    elif len(scope) > 3:
        region, service = scope[2], scope[3]
    else:
        region, service = "", "s3"  # presigned POST forms and anonymous requests are S3's
    return Request(method=method, path=path, query=query, headers=headers, body=body, service=service, region=region)


class InProcessIam:
    """The same checks for boto3 sessions that talk to moto in this process (``mock_aws``).

    No HTTP server stands between such a session and moto, so the checks run in botocore's
    ``before-send`` event, ahead of moto's: a refused call raises the ``ClientError`` AWS would
    answer (``AccessDenied``, ``ExpiredToken``) and never reaches moto. What the server alone
    models is left out: a missing S3 key answers 404 whatever the caller may list.
    """

    def __init__(self) -> None:
        self.decisions: list[Decision] = []
        self._lock = threading.Lock()

    def enforce_on(self, session: Any) -> Any:
        """Check every call ``session`` (a boto3 session) makes from now on; returns it."""
        session.events.register_first("before-send", self._check)
        return session

    def _check(self, request: Any, event_name: str = "", **_: Any) -> None:
        from botocore.exceptions import ClientError

        url = urlsplit(request.url)
        headers = {
            name.lower(): value.decode() if isinstance(value, bytes) else str(value)
            for name, value in request.headers.items()
        }
        path = url.path or "/"
        # boto3 without an endpoint addresses S3 by virtual host: the bucket is in the host name.
        bucket = re.match(r"(.+)\.s3[.-](?:[a-z0-9-]+\.)?amazonaws\.com$", url.hostname or "")
        if bucket:
            path = f"/{bucket.group(1)}{path}"
        checked = _signed_request(request.method, path, url.query, headers, _body_bytes(request))
        access_key, _region = _credential(checked)
        principal = find_principal(access_key)
        operation = event_name.rsplit(".", 1)[-1]
        if principal is None:
            raise ClientError(
                _error("InvalidClientTokenId", "The security token included in the request is invalid."), operation
            )
        if principal.expired:
            raise ClientError(
                _error("ExpiredToken", "The security token included in the request is expired."), operation
            )
        refused = refused_check(principal, checked, self._note)
        if refused is not None:
            raise ClientError(_error("AccessDenied", _denial(principal, refused)), operation)

    def _note(self, decision: Decision) -> None:
        with self._lock:
            self.decisions.append(decision)


def _body_bytes(request: Any) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    # A streamed upload (S3's aws-chunked bodies) cannot be rewound; no check reads an S3 body.
    if all(hasattr(body, name) for name in ("read", "seek", "tell")):
        start = body.tell()
        data = body.read()
        body.seek(start)
        return data if isinstance(data, bytes) else str(data).encode()
    return b""


def _error(code: str, message: str) -> Any:
    return {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 403}}


_JSON_ERRORS = {"AccessDenied": "AccessDeniedException"}


def _refuse(start_response: Callable[..., Any], request: Request, code: str, message: str) -> list[bytes]:
    """``code`` in the service's error format: S3's and the query services' XML, or the JSON protocols'."""
    if request.header("x-amz-target"):
        body = json.dumps({"__type": _JSON_ERRORS.get(code, code), "message": message}).encode()
        start_response(
            "400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))]
        )
        return [body]
    request_id = uuid.uuid4().hex
    if request.service == "s3":
        xml = f"<Error><Code>{code}</Code><Message>{_escape(message)}</Message><RequestId>{request_id}</RequestId></Error>"
    else:
        xml = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{_escape(message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    body = xml.encode()
    start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def role_session(role_arn: str, session_name: str, duration_s: int = 3600) -> Any:
    """A boto3 session that calls as ``role_arn`` (assumed by the account's root, as Lambda and
    SageMaker assume a unit's role), renewing its temporary credentials before they expire."""
    import boto3
    import botocore.session
    from botocore.credentials import RefreshableCredentials

    sts = boto3.session.Session().client("sts")

    def fetch() -> dict[str, str]:
        credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=duration_s)[
            "Credentials"
        ]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    core = botocore.session.Session()
    # botocore's own way to hold renewing credentials; it has no public setter for them.
    setattr(core, "_credentials", RefreshableCredentials.create_from_metadata(fetch(), fetch, "assume-role"))  # noqa: B010
    return boto3.session.Session(botocore_session=core)


def needed_statements(decisions: Sequence[Decision]) -> dict[str, set[str]]:
    """Per role, the statements some allowed call needed: it was allowed by that statement alone."""
    needed: dict[str, set[str]] = {}
    for decision in decisions:
        if decision.allowed and len(decision.statements) == 1:
            needed.setdefault(decision.role, set()).add(decision.statements[0])
    return needed


__all__ = [
    "Check",
    "Decision",
    "IamEnforcer",
    "Principal",
    "checks_for",
    "evaluate",
    "find_principal",
    "needed_statements",
    "role_session",
]
