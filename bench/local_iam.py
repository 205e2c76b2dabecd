"""Benchmark what the local IAM check costs a call: the same calls as the account's root
(passed through unchecked) and as the gateway's role (every check evaluated), in one run.

The calls are the gateway's own: DynamoDB ``GetItem`` of a job record, S3 ``GetObject`` of an
upload, EventBridge ``PutEvents`` on the bus. Root and role calls alternate, so load on the
machine falls on both alike. Figures: median and p90 milliseconds per call, and the ratio
role / root per call kind.

Usage::

    .venv/bin/python bench/local_iam.py --calls 300
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any


def _time_ms(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls of each kind, per principal (default 300)")
    args = parser.parse_args(argv)

    import boto3

    from spaceport.config import PipelineConfig
    from spaceport.local.aws import LocalAws
    from spaceport.local.iam import role_session
    from spaceport.local.provision import provision

    with LocalAws() as aws:
        config = PipelineConfig.from_env()
        resources = provision(config)
        root = boto3.session.Session()
        gateway = role_session(resources.role_arns["gateway"], "bench-local-iam")
        root.client("dynamodb").put_item(TableName=config.jobs_table, Item={"job_id": {"S": "bench"}})
        root.client("s3").put_object(Bucket=config.uploads_bucket, Key="bench/photos.zip", Body=b"x" * 1024)
        entry = {
            "Source": "spaceport.bench",
            "DetailType": "Bench",
            "Detail": json.dumps({"bench": True}),
            "EventBusName": config.bus_name,
        }

        def calls(session: Any) -> dict[str, Callable[[], Any]]:
            dynamodb, s3, events = session.client("dynamodb"), session.client("s3"), session.client("events")
            return {
                "dynamodb GetItem": lambda: dynamodb.get_item(
                    TableName=config.jobs_table, Key={"job_id": {"S": "bench"}}
                ),
                "s3 GetObject": lambda: s3.get_object(Bucket=config.uploads_bucket, Key="bench/photos.zip")[
                    "Body"
                ].read(),
                "events PutEvents": lambda: events.put_events(Entries=[entry]),
            }

        as_root, as_role = calls(root), calls(gateway)
        for name in as_root:  # warm the clients and the connections
            as_root[name](), as_role[name]()
        times: dict[str, dict[str, list[float]]] = {name: {"root": [], "role": []} for name in as_root}
        for _ in range(args.calls):
            for name in as_root:
                times[name]["root"].append(_time_ms(as_root[name]))
                times[name]["role"].append(_time_ms(as_role[name]))
        decisions = len(aws.iam.decisions) if aws.iam else 0

    print(f"{args.calls} calls of each kind per principal; load average {os.getloadavg()[0]:.1f}")
    print(f"{'call':<18} {'root median':>12} {'role median':>12} {'role p90':>9} {'ratio':>6}")
    for name, by in times.items():
        root_ms, role_ms = statistics.median(by["root"]), statistics.median(by["role"])
        p90 = statistics.quantiles(by["role"], n=10)[-1]
        print(f"{name:<18} {root_ms:>10.2f}ms {role_ms:>10.2f}ms {p90:>7.2f}ms {role_ms / root_ms:>6.2f}")
    print(f"decisions recorded: {decisions}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
