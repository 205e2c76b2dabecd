"""Spaceport's AWS deployment: the CDK stack and the tooling around ``chalice deploy``.

Example::

    from spaceport_infra.stack import SpaceportStack
    from spaceport_infra.settings import InfraSettings
"""
