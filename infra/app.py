"""The CDK app: ``make synth`` runs it offline, ``make deploy-infra`` through the CDK CLI.

Settings come from CDK context: the defaults in ``cdk.json`` (read here too, so running this
file without the CLI gives the same stack) and ``-c key=value`` on the CLI, which wins. See
``spaceport_infra.settings.InfraSettings`` for every key.
"""

import json
import sys
from pathlib import Path

import aws_cdk as cdk

from spaceport_infra.settings import InfraSettings, InfraSettingsError
from spaceport_infra.stack import SpaceportStack

defaults = json.loads((Path(__file__).parent / "cdk.json").read_text())["context"]
app = cdk.App(context=defaults)
try:
    settings = InfraSettings.from_context(app.node.try_get_context)
except InfraSettingsError as error:
    print(f"infra: {error}", file=sys.stderr)
    raise SystemExit(error.exit_code) from None
SpaceportStack(app, f"spaceport-{settings.deployment}", settings=settings)
app.synth()
