"""Where the API itself is served, from the request API Gateway (or the local gateway) handed over.

The share view's links point back into the API (``/share/{token}/scene/...``), so the gateway
names its own address: API Gateway's domain and stage, or the local gateway's host.

>>> api_base_url({"domainName": "abc.execute-api.eu-west-1.amazonaws.com", "stage": "v1"}, {})
'https://abc.execute-api.eu-west-1.amazonaws.com/v1'
>>> api_base_url({"domainName": "api.spaceport.example", "stage": "v1"}, {})
'https://api.spaceport.example'
>>> api_base_url({}, {"host": "127.0.0.1:8000"})
'http://127.0.0.1:8000'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def api_base_url(context: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    """API Gateway serves HTTPS at its domain (its own domain names the stage in the path; a custom
    domain maps it away); the local gateway serves plain HTTP at the request's host."""
    domain = context.get("domainName")
    if isinstance(domain, str) and domain:
        stage = context.get("stage")
        in_path = domain.endswith(".amazonaws.com") and isinstance(stage, str) and stage
        return f"https://{domain}/{stage}" if in_path else f"https://{domain}"
    return f"http://{headers.get('host', '127.0.0.1')}"
