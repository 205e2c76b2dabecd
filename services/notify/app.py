"""The notify service (Lambda): consumes the spaceport-notify queue.

It emails the user once per run's outcome (SES, HTML and text) and records the job's final
status. The logic is :func:`spaceport.handlers.handle_notify_message`.
"""

from chalice import Chalice

from spaceport.adapters import default_ports
from spaceport.contracts import service
from spaceport.handlers import handle_notify_message, process_sqs_batch

SERVICE = service("notify")
app = Chalice(app_name="spaceport-notify")


@app.on_sqs_message(queue=SERVICE.queue_name, batch_size=SERVICE.batch_size)
def consume(event):
    ports = default_ports()
    return process_sqs_batch(
        event.to_dict(), lambda body: handle_notify_message(body, ports, event.context), event.context
    )
