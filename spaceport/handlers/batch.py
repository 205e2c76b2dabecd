"""An SQS batch through Powertools' ``BatchProcessor``: failed records are reported, not raised.

Lambda (with ``ReportBatchItemFailures``) and the local queue workers delete the records
that succeeded and leave the failed ones for SQS to redeliver, then dead-letter.

Example::

    @app.on_sqs_message(queue="spaceport-sfm", batch_size=5)
    def consume(event):
        return process_sqs_batch(event.to_dict(), lambda body: handle_stage_message(Stage.SFM, body, ports()))
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
        logger.warning("message %s failed: %s", failed.message_id, failed.body[:200])
    return dict(answer)
