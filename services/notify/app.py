"""The notify service (Lambda): consumes its queue, emails each run's outcome and records the job's end.

The logic is :func:`spaceport.handlers.handle_notify_message`; :mod:`spaceport.service_apps`
wires it to the queue the topology names.
"""

from spaceport.service_apps import notify_service_app

app, consume = notify_service_app()
