"""Shared scenes: ``GET /share/{token}`` and the scene's files under it.

A share token opens the job's public view: its scene's links, its figures and where it was
captured, never the owner's address or an S3 URI. The scene's files are served under the
token (``/share/{token}/scene/<file>``) by a redirect to a short-lived presigned link of that
one object of the job's compress output, so that a streamed scene (whose index names its
chunks, and the scene bundle beside its folder, by relative path) loads as the files of one
folder. A revoked or unknown token gets 404.

>>> from spaceport.contracts.layout import JOB_REPORT
>>> [scene_object(name) == name for name in (CompressOutputs.STREAMED, CompressOutputs.SCENE, "lod/0_0/a.webp")]
[True, True, True]
>>> scene_object(CompressOutputs.METRICS), scene_object("lod/../" + JOB_REPORT), scene_object("lod/a/b/c")
(None, None, None)
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from spaceport.auth import hash_share_token, is_share_token
from spaceport.contracts.job import JobRecord
from spaceport.contracts.layout import CompressOutputs
from spaceport.contracts.links import share_viewer_url
from spaceport.ports import Ports

# Link name (the job's artifact) -> the scene file it is, under the compress output.
SHARED_FILES = {"sog": CompressOutputs.SCENE, "spz": CompressOutputs.SPZ, "glb": CompressOutputs.GLB}
# The streamed scene's folder (its index, and one folder per chunk below it).
STREAMED_FOLDER = str(PurePosixPath(CompressOutputs.STREAMED).parent)
# A redirect is followed at once; each file of a streamed scene gets its own when it is fetched.
SCENE_LINK_TTL_S = 900
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def scene_object(path: str) -> str | None:
    """``path`` if it names a scene file a share link serves: one of :data:`SHARED_FILES`, or a
    file of the streamed scene (at most one folder below it); else ``None``."""
    parts = path.split("/")
    if len(parts) == 1 and path in SHARED_FILES.values():
        return path
    if 2 <= len(parts) <= 3 and parts[0] == STREAMED_FOLDER and all(_NAME.match(part) for part in parts[1:]):
        return path
    return None


def find_shared(ports: Ports, token: str) -> JobRecord | None:
    """The job a share token opens (a scene to show), or ``None``."""
    if not is_share_token(token):
        return None
    record = ports.store.find_shared(hash_share_token(token))
    return record if record is not None and "compress" in record.artifacts else None


def share_links(ports: Ports, token: str, api_base: str) -> dict[str, str]:
    """Where a share token leads: the viewer page, and the public view in the API."""
    return {
        "token": token,
        "shareUrl": share_viewer_url(ports.config.public_base_url, token),
        "shareApiUrl": f"{api_base.rstrip('/')}/share/{token}",
    }


def public_view(ports: Ports, record: JobRecord, token: str, api_base: str) -> dict[str, Any]:
    """What anyone with the link sees: status, figures, georeference, and links under the token."""
    scene = f"{api_base.rstrip('/')}/share/{token}/scene"
    links = {"viewer": share_viewer_url(ports.config.public_base_url, token)}
    links.update({name: f"{scene}/{file}" for name, file in SHARED_FILES.items() if name in record.artifacts})
    if ports.objects.head(record.artifacts["compress"] + CompressOutputs.STREAMED) is not None:
        links["streamed"] = f"{scene}/{CompressOutputs.STREAMED}"
    figures = {
        key: value
        for key, value in record.summary.items()
        if not (isinstance(value, str) and "://" in value) and key != "sfm_georeference"
    }
    view: dict[str, Any] = {
        "status": record.status.value,
        "createdAt": record.created_at.isoformat(),
        "summary": figures,
        "links": links,
    }
    georeference = record.summary.get("sfm_georeference")
    if isinstance(georeference, dict):
        view["georeference"] = georeference
    return view


def scene_link(ports: Ports, record: JobRecord, path: str) -> str | None:
    """A short-lived presigned link to the scene file ``path`` of the shared job, or ``None``."""
    name = scene_object(path)
    if name is None:
        return None
    return ports.objects.presign_get(record.artifacts["compress"] + name, SCENE_LINK_TTL_S)
