"""The services' logic as plain functions over :class:`~spaceport.ports.Ports`.

The Chalice apps in ``services/*/app.py`` only wire these to their queues
(:mod:`spaceport.service_apps`); the local runtime's workers call the same apps.
"""

from spaceport.handlers.batch import process_sqs_batch
from spaceport.handlers.notify import handle_notify_message
from spaceport.handlers.stage import diagnose, handle_stage_message, parse_state_change

__all__ = ["diagnose", "handle_notify_message", "handle_stage_message", "parse_state_change", "process_sqs_batch"]
