"""The services' logic as plain functions over :class:`~spaceport.adapters.Ports`.

The Chalice apps in ``services/*/app.py`` only wire these to their queues; the local
runtime's workers call the same apps.

Example::

    from spaceport.handlers import handle_stage_message, handle_notify_message, process_sqs_batch
    answer = process_sqs_batch(lambda_event, lambda body: handle_stage_message(Stage.TRAIN, body, ports))
"""

from spaceport.handlers.batch import process_sqs_batch
from spaceport.handlers.notify import handle_notify_message
from spaceport.handlers.stage import diagnose, handle_stage_message, parse_state_change

__all__ = ["diagnose", "handle_notify_message", "handle_stage_message", "parse_state_change", "process_sqs_batch"]
