"""The sfm service (Lambda): consumes the spaceport-sfm queue.

It launches the sfm stage's SageMaker job when its trigger event arrives, follows the job
through SageMaker's state-change events, and stops it when the job is cancelled. The logic
is :func:`spaceport.handlers.handle_stage_message`; this file only wires it to the queue.
"""

from chalice import Chalice

from spaceport.adapters import default_ports
from spaceport.contracts import Stage, service
from spaceport.handlers import handle_stage_message, process_sqs_batch

SERVICE = service("sfm")
app = Chalice(app_name="spaceport-sfm")


@app.on_sqs_message(queue=SERVICE.queue_name, batch_size=SERVICE.batch_size)
def consume(event):
    ports = default_ports()
    return process_sqs_batch(
        event.to_dict(), lambda body: handle_stage_message(Stage.SFM, body, ports, event.context), event.context
    )
