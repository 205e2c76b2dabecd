"""The shared AWS infrastructure of one Spaceport deployment, built from the topology.

Queues and EventBridge rules come from :data:`spaceport.contracts.topology.SERVICES`, the
definition the local runtime provisions from too, so the two cannot drift. What the Chalice
apps need (names, ARNs) leaves the stack as SSM parameters (see :mod:`.parameters`).
``infra/app.py`` makes one ``SpaceportStack(app, "spaceport-<deployment>", settings=...)``.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import (
    aws_apigateway as apigateway,
)
from aws_cdk import (
    aws_cloudfront as cloudfront,
)
from aws_cdk import (
    aws_cloudfront_origins as origins,
)
from aws_cdk import (
    aws_cloudwatch as cloudwatch,
)
from aws_cdk import (
    aws_cloudwatch_actions as cloudwatch_actions,
)
from aws_cdk import (
    aws_cognito as cognito,
)
from aws_cdk import (
    aws_dynamodb as dynamodb,
)
from aws_cdk import (
    aws_ecr as ecr,
)
from aws_cdk import (
    aws_events as events,
)
from aws_cdk import (
    aws_events_targets as targets,
)
from aws_cdk import (
    aws_iam as iam,
)
from aws_cdk import (
    aws_s3 as s3,
)
from aws_cdk import (
    aws_ses as ses,
)
from aws_cdk import (
    aws_sns as sns,
)
from aws_cdk import (
    aws_sns_subscriptions as sns_subscriptions,
)
from aws_cdk import (
    aws_sqs as sqs,
)
from aws_cdk import (
    aws_ssm as ssm,
)
from constructs import Construct

from spaceport.adapters.jobstore import idempotency_table_definition, jobs_table_definition
from spaceport.auth.pool import MIN_PASSWORD_LENGTH
from spaceport.config import PipelineConfig, StageSettings
from spaceport.contracts.deployment import resource_name
from spaceport.contracts.events import EVENT_SOURCE
from spaceport.contracts.stages import JOB_STAGES
from spaceport.contracts.topology import PIPELINE_BUS, SERVICES, ServiceSpec, Subscription
from spaceport.contracts.units import job_role_key, job_unit, queue_arn_key, repository_key
from spaceport.integrations import usage_plan_name
from spaceport_infra.apps import APPS, lambda_function_names
from spaceport_infra.parameters import API_THROTTLE, api_parameter, arn_parameter, env_path, rules_path
from spaceport_infra.settings import InfraSettings

# Powertools' idempotency records expire through this attribute (its default name).
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"
_PATTERN_KEYS = {"source": "source", "detail-type": "detail_type", "detail": "detail"}


def event_pattern(subscription: Subscription) -> events.EventPattern:
    """The topology's pattern as CDK's type (the keys the topology uses, nothing added)."""
    unknown = set(subscription.pattern) - set(_PATTERN_KEYS)
    if unknown:
        raise ValueError(f"{subscription.rule_name}: pattern keys {sorted(unknown)} have no CDK mapping")
    return events.EventPattern(**{_PATTERN_KEYS[key]: value for key, value in subscription.pattern.items()})


# The user pool's group whose members see and act on every job.
OPERATORS_GROUP = PipelineConfig().operators_group


class SpaceportStack(cdk.Stack):
    """Buses, queues, rules, buckets, tables, images, the SageMaker role, alarms and parameters."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings, **kwargs: Any) -> None:
        super().__init__(
            scope, construct_id, description=f"Spaceport shared infrastructure ({settings.deployment})", **kwargs
        )
        self.settings = settings
        # The deployment's own names for its bus and tables (the local runtime's, for "local").
        self.names = PipelineConfig(deployment=settings.deployment)
        cdk.Tags.of(self).add("spaceport:deployment", settings.deployment)

        self.operators = sns.Topic(
            self, "Operators", topic_name=self._name("operators"), display_name="Spaceport operators", enforce_ssl=True
        )
        if settings.operator_email:
            self.operators.add_subscription(sns_subscriptions.EmailSubscription(settings.operator_email))

        self._storage()
        self._site()
        self._accounts()
        self._event_plumbing()
        self._tables()
        self._images_and_roles()
        self._identity_and_secret()
        self._alarms_and_dashboard()
        self._job_policies()
        self._parameters()

    def _name(self, *parts: str) -> str:
        return resource_name(self.settings.deployment, *parts)

    # --- storage -------------------------------------------------------------------------

    def _bucket(self, kind: str, lifecycle: list[s3.LifecycleRule]) -> s3.Bucket:
        return s3.Bucket(
            self,
            f"{kind.capitalize()}Bucket",
            bucket_name=self._name(kind, cdk.Aws.ACCOUNT_ID, cdk.Aws.REGION),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=cdk.Duration.days(7)
                ),
                *lifecycle,
            ],
            # Users' photos and results outlive a torn-down stack; delete them on purpose.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _storage(self) -> None:
        s = self.settings
        to_infrequent_access = s3.LifecycleRule(
            id="old-runs-to-infrequent-access",
            transitions=[
                s3.Transition(
                    storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                    transition_after=cdk.Duration.days(s.runs_to_infrequent_access_days),
                )
            ],
        )
        self.uploads = self._bucket(
            "uploads", [s3.LifecycleRule(id="uploads-expire", expiration=cdk.Duration.days(s.uploads_expire_days))]
        )
        self.stage_buckets = {
            "sfm": self._bucket("sfm", [to_infrequent_access]),
            "train": self._bucket("train", [to_infrequent_access]),
            "compressed": self._bucket("compressed", [to_infrequent_access]),
        }
        self.site_bucket = self._bucket("site", [])

    def _site(self) -> None:
        """The viewer, served from the private site bucket through CloudFront (origin access control)."""
        self.distribution = cloudfront.Distribution(
            self,
            "Site",
            comment=f"Spaceport viewer ({self.settings.deployment})",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.site_bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
            ),
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            # The viewer is a single-page app: /view/<job> and other routes are index.html.
            error_responses=[
                cloudfront.ErrorResponse(
                    http_status=status,
                    response_http_status=200,
                    response_page_path="/index.html",
                    ttl=cdk.Duration.seconds(10),
                )
                for status in (403, 404)
            ],
        )
        self.public_base_url = f"https://{self.distribution.distribution_domain_name}"
        # The browser uploads photos with presigned URLs and opens results by presigned links,
        # both from the viewer's origin only.
        self.uploads.add_cors_rule(
            allowed_origins=[self.public_base_url],
            allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.POST],
            allowed_headers=["*"],
            max_age=3600,
        )
        self.stage_buckets["compressed"].add_cors_rule(
            allowed_origins=[self.public_base_url],
            allowed_methods=[s3.HttpMethods.GET, s3.HttpMethods.HEAD],
            allowed_headers=["*"],
            max_age=3600,
        )

    # --- accounts: who may call the gateway, and how much ------------------------------------

    def _accounts(self) -> None:
        """The user pool people sign in to (their email is the username, verified on sign-up), the web
        app's client (no secret: it runs in a browser; SRP, so no password leaves it), the operators
        group, and the usage plan integration keys are issued in (throttle and quota per key).

        The gateway's REST API is Chalice's; the deploy step gives every route of its stage the
        throttle this stack publishes (:meth:`api_settings`) and attaches the stage to the usage
        plan (``python -m spaceport_infra.chalice_apps finish gateway``).
        """
        s = self.settings
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            user_pool_name=self._name("users"),
            self_sign_up_enabled=True,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            standard_attributes=cognito.StandardAttributes(
                email=cognito.StandardAttribute(required=True, mutable=True)
            ),
            # Long, of any characters (the local pool has the same rule: spaceport.local.cognito).
            password_policy=cognito.PasswordPolicy(
                min_length=MIN_PASSWORD_LENGTH,
                require_lowercase=False,
                require_uppercase=False,
                require_digits=False,
                require_symbols=False,
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            sign_in_case_sensitive=False,
            # People's accounts outlive a torn-down stack; delete them on purpose.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.web_client = self.user_pool.add_client(
            "WebApp",
            user_pool_client_name=self._name("web"),
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True),
            prevent_user_existence_errors=True,
            read_attributes=cognito.ClientAttributes().with_standard_attributes(email=True, email_verified=True),
            id_token_validity=cdk.Duration.hours(1),
            refresh_token_validity=cdk.Duration.days(30),
        )
        cognito.CfnUserPoolGroup(
            self,
            "OperatorsGroup",
            user_pool_id=self.user_pool.user_pool_id,
            group_name=OPERATORS_GROUP,
            description="See and act on every job; each action is recorded on the job",
        )
        self.integration_plan = apigateway.CfnUsagePlan(
            self,
            "IntegrationPlan",
            usage_plan_name=usage_plan_name(s.deployment),
            description="Integration keys: each bound to one Spaceport user",
            throttle=apigateway.CfnUsagePlan.ThrottleSettingsProperty(
                rate_limit=s.integration_rate_limit, burst_limit=s.integration_burst_limit
            ),
            quota=apigateway.CfnUsagePlan.QuotaSettingsProperty(limit=s.integration_daily_quota, period="DAY"),
        )
        # A shared scene's files are served by a redirect from the API to a presigned link; after a
        # redirect to another origin the browser sends "Origin: null", so reads are allowed from any
        # origin (the presigned link, not the origin, is what grants a read).
        self.stage_buckets["compressed"].add_cors_rule(
            allowed_origins=["*"], allowed_methods=[s3.HttpMethods.GET, s3.HttpMethods.HEAD], max_age=3600
        )

    def api_settings(self) -> dict[str, str]:
        """What the deploy step applies to the gateway's stage: every route's throttle, the usage plan."""
        s = self.settings
        return {
            API_THROTTLE["rate"]: str(s.api_rate_limit),
            API_THROTTLE["burst"]: str(s.api_burst_limit),
            API_THROTTLE["plan"]: self.integration_plan.ref,
        }

    # --- events and queues ---------------------------------------------------------------

    def _event_plumbing(self) -> None:
        self.bus = events.EventBus(self, "Bus", event_bus_name=self.names.bus_name)
        self.archive = self.bus.archive(
            "Archive",
            archive_name=self.names.archive_name,
            description="Every Spaceport pipeline event, for spaceport replay --archive",
            event_pattern=events.EventPattern(source=[EVENT_SOURCE]),
            retention=cdk.Duration.days(self.settings.archive_retention_days),
        )
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", "default")
        # Events EventBridge could not deliver to a queue (after its own retries) land here.
        self.delivery_dlq = sqs.Queue(
            self,
            "DeliveryDlq",
            queue_name=self._name("events", "dlq"),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {self.delivery_dlq.queue_name: self.delivery_dlq}
        self.rules: dict[str, events.Rule] = {}
        for spec in SERVICES:
            queue, dlq = self._service_queue(spec)
            self.queues[spec.name] = queue
            self.dead_letter_queues[spec.name] = dlq
            for subscription in spec.subscriptions(self.settings.deployment):
                rule = events.Rule(
                    self,
                    f"Rule-{subscription.rule_name}",
                    rule_name=subscription.rule_name,
                    event_bus=self.bus if subscription.bus == PIPELINE_BUS else default_bus,
                    event_pattern=event_pattern(subscription),
                    description=f"{subscription.bus} bus -> {spec.queue_name(self.settings.deployment)}",
                )
                # The target adds the queue policy: SendMessage from this rule only (aws:SourceArn).
                rule.add_target(
                    targets.SqsQueue(
                        queue,
                        dead_letter_queue=self.delivery_dlq,
                        retry_attempts=185,
                        max_event_age=cdk.Duration.hours(24),
                    )
                )
                self.rules[subscription.rule_name] = rule

    def _service_queue(self, spec: ServiceSpec) -> tuple[sqs.Queue, sqs.Queue]:
        ident = spec.name.capitalize()
        dlq = sqs.Queue(
            self,
            f"{ident}Dlq",
            queue_name=spec.dead_letter_queue_name(self.settings.deployment),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        queue = sqs.Queue(
            self,
            f"{ident}Queue",
            queue_name=spec.queue_name(self.settings.deployment),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=cdk.Duration.seconds(spec.visibility_timeout_s),
            retention_period=cdk.Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=spec.max_receive_count),
        )
        return queue, dlq

    # --- tables ----------------------------------------------------------------------------

    def _table(self, construct_id: str, definition: dict[str, Any], ttl_attribute: str | None = None) -> dynamodb.Table:
        """A table from the same ``CreateTable`` arguments the local runtime uses, plus PITR."""
        scalar = {
            "S": dynamodb.AttributeType.STRING,
            "N": dynamodb.AttributeType.NUMBER,
            "B": dynamodb.AttributeType.BINARY,
        }
        types = {a["AttributeName"]: scalar[a["AttributeType"]] for a in definition["AttributeDefinitions"]}

        def keys(schema: list[dict[str, str]]) -> dict[str, Any]:
            roles = {"HASH": "partition_key", "RANGE": "sort_key"}
            return {
                roles[k["KeyType"]]: dynamodb.Attribute(name=k["AttributeName"], type=types[k["AttributeName"]])
                for k in schema
            }

        table = dynamodb.Table(
            self,
            construct_id,
            table_name=definition["TableName"],
            **keys(definition["KeySchema"]),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=ttl_attribute,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        for index in definition.get("GlobalSecondaryIndexes", []):
            if index["Projection"]["ProjectionType"] != "ALL":
                raise ValueError(f"{index['IndexName']}: only ALL projections are mapped")
            table.add_global_secondary_index(index_name=index["IndexName"], **keys(index["KeySchema"]))
        return table

    def _tables(self) -> None:
        self.jobs_table = self._table("JobsTable", jobs_table_definition(self.names.jobs_table))
        self.idempotency_table = self._table(
            "IdempotencyTable",
            idempotency_table_definition(self.names.idempotency_table),
            ttl_attribute=IDEMPOTENCY_TTL_ATTRIBUTE,
        )

    # --- images and the SageMaker role -----------------------------------------------------

    def _images_and_roles(self) -> None:
        self.repositories = {
            stage: ecr.Repository(
                self,
                f"{stage.value.capitalize()}Repository",
                repository_name=self._name(stage.value),
                image_scan_on_push=True,
                # A tag names one image for good: a job and its retry run the same code.
                image_tag_mutability=ecr.TagMutability.IMMUTABLE,
                encryption=ecr.RepositoryEncryption.AES_256,
                lifecycle_rules=[ecr.LifecycleRule(description="keep the 20 newest images", max_image_count=20)],
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
            for stage in JOB_STAGES
        }
        # One role per stage's job, holding only what its unit grants (attached once every ARN exists).
        self.job_roles = {
            stage: iam.Role(
                self,
                f"{stage.value.capitalize()}JobRole",
                role_name=job_unit(stage).role_name(self.settings.deployment),
                assumed_by=iam.ServicePrincipal(job_unit(stage).service_principal),
                description=f"What the {stage.value} stage's SageMaker job may touch",
            )
            for stage in JOB_STAGES
        }

    def _job_policies(self) -> None:
        arns = self.arns()
        for stage, role in self.job_roles.items():
            document = iam.PolicyDocument.from_json(job_unit(stage).policy(arns))
            iam.Policy(self, f"{stage.value.capitalize()}JobPolicy", document=document, roles=[role])

    def _identity_and_secret(self) -> None:
        self.sender_identity = ses.EmailIdentity(
            self, "Sender", identity=ses.Identity.email(self.settings.sender_email)
        )
        self.sender_identity_arn = (
            f"arn:{cdk.Aws.PARTITION}:ses:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:identity/{self.settings.sender_email}"
        )

    # --- operations ------------------------------------------------------------------------

    def _alarm(
        self, construct_id: str, name: str, metric: cloudwatch.IMetric, description: str, threshold: float = 0
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=name,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.operators))
        return alarm

    def _alarms_and_dashboard(self) -> None:
        minute = cdk.Duration.minutes(1)
        self.alarms: list[cloudwatch.Alarm] = []
        for dlq in self.dead_letter_queues.values():
            depth = dlq.metric_approximate_number_of_messages_visible(period=minute, statistic="Maximum")
            self.alarms.append(
                self._alarm(
                    f"DlqDepth-{dlq.node.id}",
                    f"{dlq.queue_name}-not-empty",
                    depth,
                    f"Messages in {dlq.queue_name}: see docs/OPERATIONS.md, 'Redrive a dead-letter queue'.",
                )
            )
        for name, queue in self.queues.items():
            age = queue.metric_approximate_age_of_oldest_message(period=cdk.Duration.minutes(5), statistic="Maximum")
            self.alarms.append(
                self._alarm(
                    f"QueueStalled-{name}",
                    self._name(name, "queue-stalled"),
                    age,
                    f"The {name} service has left a message unprocessed for 15 minutes.",
                    threshold=900,
                )
            )
        # Every job that fails for good publishes JobFailed, which the notify service's rule matches.
        failed_rule = next(
            s.rule_name
            for spec in SERVICES
            for s in spec.subscriptions(self.settings.deployment)
            if s.bus == PIPELINE_BUS and s.pattern["detail-type"] == ["JobFailed"]
        )
        self.failed_jobs = cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name="MatchedEvents",
            statistic="Sum",
            period=cdk.Duration.minutes(5),
            dimensions_map={"EventBusName": self.names.bus_name, "RuleName": failed_rule},
            label="failed jobs",
        )
        self.alarms.append(
            self._alarm(
                "JobsFailed",
                self._name("jobs-failed"),
                self.failed_jobs,
                "A job failed for good (JobFailed): see the job's record and its logs.",
            )
        )
        self.lambda_errors: dict[str, cloudwatch.Metric] = {}
        for app in APPS:
            for function_name in lambda_function_names(app, self.settings.deployment):
                metric = cloudwatch.Metric(
                    namespace="AWS/Lambda",
                    metric_name="Errors",
                    statistic="Sum",
                    period=cdk.Duration.minutes(5),
                    dimensions_map={"FunctionName": function_name},
                    label=function_name,
                )
                self.lambda_errors[function_name] = metric
                self.alarms.append(
                    self._alarm(
                        f"LambdaErrors-{function_name}",
                        f"{function_name}-errors",
                        metric,
                        f"{function_name} raised errors (Chalice app {app.name}).",
                    )
                )
        self._dashboard()

    def _dashboard(self) -> None:
        minute = cdk.Duration.minutes(1)
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=self._name())
        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# Spaceport ({self.settings.deployment})\nRunbook: docs/OPERATIONS.md", width=24, height=2
            )
        )
        dashboard.add_widgets(cloudwatch.AlarmStatusWidget(alarms=self.alarms, title="Alarms", width=24))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Messages waiting per service",
                width=12,
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=minute, label=name)
                    for name, queue in self.queues.items()
                ],
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                width=12,
                left=[
                    dlq.metric_approximate_number_of_messages_visible(period=minute, label=dlq.queue_name)
                    for dlq in self.dead_letter_queues.values()
                ],
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Pipeline events routed per rule",
                width=12,
                left=[
                    cloudwatch.Metric(
                        namespace="AWS/Events",
                        metric_name="MatchedEvents",
                        statistic="Sum",
                        period=cdk.Duration.minutes(5),
                        label=name,
                        dimensions_map={"EventBusName": self.names.bus_name, "RuleName": name},
                    )
                    for name in self.rules
                    if not name.endswith("-sagemaker-state")
                ],
            ),
            cloudwatch.GraphWidget(
                title="Failed jobs and Lambda errors", width=12, left=[self.failed_jobs, *self.lambda_errors.values()]
            ),
        )

    # --- what the apps and operators read --------------------------------------------------

    def lambda_environment(self) -> dict[str, str]:
        """Lambda environment variables: this deployment's :class:`~spaceport.config.PipelineConfig`,
        written as ``PipelineConfig.from_env`` reads it (names and settings only: nothing secret)."""
        s = self.settings
        config = PipelineConfig(
            bus_name=self.bus.event_bus_name,
            jobs_table=self.jobs_table.table_name,
            idempotency_table=self.idempotency_table.table_name,
            uploads_bucket=self.uploads.bucket_name,
            sfm_bucket=self.stage_buckets["sfm"].bucket_name,
            train_bucket=self.stage_buckets["train"].bucket_name,
            compressed_bucket=self.stage_buckets["compressed"].bucket_name,
            site_bucket=self.site_bucket.bucket_name,
            sender_email=s.sender_email,
            public_base_url=self.public_base_url,
            cors_origin=self.public_base_url,
            user_pool_id=self.user_pool.user_pool_id,
            user_pool_client_id=self.web_client.user_pool_client_id,
            user_pool_arn=self.user_pool.user_pool_arn,
            operators_group=OPERATORS_GROUP,
            max_concurrent_jobs=s.max_concurrent_jobs,
            daily_gpu_minutes=s.daily_gpu_minutes,
            train_spot=s.train_spot,
            stages={
                stage: StageSettings(
                    image_uri=repository.repository_uri_for_tag(s.image_tag),
                    role_arn=self.job_roles[stage].role_arn,
                    instance_type=s.machines[stage].instance_type,
                    volume_gb=s.machines[stage].volume_gb,
                    max_runtime_s=s.machines[stage].max_runtime_s,
                )
                for stage, repository in self.repositories.items()
            },
        )
        return config.to_env()

    def arns(self) -> dict[str, str]:
        """What the units' policies name as ``${Key}`` (see ``parameters.ARN_KEYS``)."""
        values = {
            "Deployment": self.settings.deployment,
            "Partition": cdk.Aws.PARTITION,
            "Region": cdk.Aws.REGION,
            "AccountId": cdk.Aws.ACCOUNT_ID,
            "UploadsBucketArn": self.uploads.bucket_arn,
            "SfmBucketArn": self.stage_buckets["sfm"].bucket_arn,
            "TrainBucketArn": self.stage_buckets["train"].bucket_arn,
            "CompressedBucketArn": self.stage_buckets["compressed"].bucket_arn,
            "SiteBucketArn": self.site_bucket.bucket_arn,
            "JobsTableArn": self.jobs_table.table_arn,
            "IdempotencyTableArn": self.idempotency_table.table_arn,
            "EventBusArn": self.bus.event_bus_arn,
            "ArchiveArn": self.archive.archive_arn,
            "SenderIdentityArn": self.sender_identity_arn,
            # The notify policy sends only From this address (any recipient: the SES sandbox
            # authorises the verified recipients' identities too).
            "SenderEmail": self.settings.sender_email,
            "PowertoolsLayerArn": (
                f"arn:{cdk.Aws.PARTITION}:lambda:{cdk.Aws.REGION}:017000801446:layer:"
                f"AWSLambdaPowertoolsPythonV3-python311-x86_64:"
                f"{self.settings.powertools_layer_version}"
            ),
        }
        values.update({queue_arn_key(name): queue.queue_arn for name, queue in self.queues.items()})
        values.update({job_role_key(stage): role.role_arn for stage, role in self.job_roles.items()})
        values.update({repository_key(stage): repo.repository_arn for stage, repo in self.repositories.items()})
        return values

    def _parameters(self) -> None:
        deployment = self.settings.deployment
        for name, value in self.lambda_environment().items():
            ssm.StringParameter(self, f"Env-{name}", parameter_name=f"{env_path(deployment)}{name}", string_value=value)
        for key, value in self.arns().items():
            ssm.StringParameter(self, f"Arn-{key}", parameter_name=arn_parameter(deployment, key), string_value=value)
            cdk.CfnOutput(self, key, value=value)
        for name, rule in self.rules.items():
            ssm.StringParameter(
                self, f"RuleArn-{name}", parameter_name=f"{rules_path(deployment)}{name}", string_value=rule.rule_arn
            )
        cdk.CfnOutput(self, "PublicBaseUrl", value=self.public_base_url)
        for name, value in self.api_settings().items():
            ssm.StringParameter(self, f"Api-{name}", parameter_name=api_parameter(deployment, name), string_value=value)
            cdk.CfnOutput(self, name, value=value)
        replayable = {
            s.rule_name
            for spec in SERVICES
            for s in spec.subscriptions(self.settings.deployment)
            if s.bus == PIPELINE_BUS
        }
        cdk.CfnOutput(
            self,
            "ReplayRuleArns",
            description="StartReplay filter ARNs (rules on the pipeline bus), json",
            value=cdk.Fn.to_json_string({name: self.rules[name].rule_arn for name in sorted(replayable)}),
        )
