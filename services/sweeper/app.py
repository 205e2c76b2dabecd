"""The sweeper (Lambda, on a schedule): fails the jobs that nothing has moved for longer than they may run.

The logic is :func:`spaceport.handlers.sweeper.sweep`; :mod:`spaceport.service_apps` schedules it.
"""

from spaceport.service_apps import sweeper_app

app, sweep = sweeper_app()
