"""The train service (Lambda): consumes its queue, launches and follows the train stage's SageMaker job.

The logic is :func:`spaceport.handlers.handle_stage_message`; :mod:`spaceport.service_apps`
wires it to the queue the topology names.
"""

from spaceport.contracts.stages import Stage
from spaceport.service_apps import stage_service_app

app, consume = stage_service_app(Stage.TRAIN)
