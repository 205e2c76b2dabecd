"""The local runtime: Spaceport's whole event architecture on one machine, with no AWS account.

* :mod:`~spaceport.local.aws`: a moto server as local AWS (``AWS_ENDPOINT_URL`` points at it),
  with the few workarounds that make it answer as AWS does;
* :mod:`~spaceport.local.provision`: the topology provisioned into it;
* :mod:`~spaceport.local.workers`: one queue worker per service, calling its Lambda handler;
* :mod:`~spaceport.local.runner`: the jobs moto's SageMaker is asked for, run as subprocesses;
* :mod:`~spaceport.local.http_server`: the gateway app on http://127.0.0.1:8000, with the web app;
* :mod:`~spaceport.local.stack`: all of it at once;
* :mod:`~spaceport.local.commands`: ``spaceport serve | run | status | replay``, with
  :mod:`~spaceport.local.client` (the running stack and its API), :mod:`~spaceport.local.progress_view`
  and :mod:`~spaceport.local.results`.

Production code never imports this package; it reaches AWS, or this runtime, through boto3 alone.
"""
