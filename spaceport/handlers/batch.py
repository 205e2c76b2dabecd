"""An SQS batch through Powertools' ``BatchProcessor``: failed records are reported, not raised.

Lambda (with ``ReportBatchItemFailures``) and the local queue workers delete the records
that succeeded and leave the failed ones for SQS to redeliver, then dead-letter.

>>> records = [{"messageId": name, "body": name, "receiptHandle": "h", "attributes": {}, "messageAttributes": {},
...             "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
...             "awsRegion": "us-east-1"} for name in ("good", "bad")]
>>> def handle(body):
...     if body == "bad":
...         raise ValueError("not an event")
>>> process_sqs_batch({"Records": records}, handle)
{'batchItemFailures': [{'itemIdentifier': 'bad'}]}
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

logger = logging.getLogger("spaceport.handlers")


def process_sqs_batch(event: dict[str, Any], handle: Callable[[str], Any], context: Any = None) -> dict[str, Any]:
    """Call ``handle(body)`` for each record; returns ``{"batchItemFailures": [...]}``."""
    # A batch whose records all failed is reported like any other, so every caller sees the same answer.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def handle_record(record: SQSRecord) -> Any:
        return handle(record.body)

    answer = process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
    for failed in processor.fail_messages:
        if isinstance(failed, SQSRecord):
            logger.warning("message %s failed: %s", failed.message_id, failed.body[:200])
    return dict(answer)
