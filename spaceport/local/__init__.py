"""The local runtime: Spaceport's whole event architecture on one machine, with no AWS account.

* :mod:`~spaceport.local.aws`: a moto server as local AWS (``AWS_ENDPOINT_URL`` points at it);
* :mod:`~spaceport.local.provision`: the topology provisioned into it;
* :mod:`~spaceport.local.workers`: one queue worker per service, calling its Lambda handler;
* :mod:`~spaceport.local.runner`: the local job runner in place of SageMaker;
* :mod:`~spaceport.local.stack`: all of it, plus the gateway on http://127.0.0.1:8000;
* :mod:`~spaceport.local.cli`: ``spaceport serve | run | status | replay``.

Example::

    with LocalStack.start() as stack:
        print(stack.gateway_url, stack.api_key)
"""
