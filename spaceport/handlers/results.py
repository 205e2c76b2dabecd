"""A finished job's downloads: the artifacts a user gets a link to, and those links.

The API's job view and the success email show the same links, built here.
"""

from __future__ import annotations

from collections.abc import Mapping

from spaceport.contracts.layout import JOB_REPORT, CompressOutputs, TrainOutputs, download_name
from spaceport.handlers.stage_jobs import EXPORTS
from spaceport.ports import Ports

# Link name (also the job record's artifact name) -> the artifact's file name, which gives the
# download its suffix.
DOWNLOADS: Mapping[str, str] = {
    "sog": CompressOutputs.SCENE,
    **EXPORTS,
    "ply": TrainOutputs.SPLAT,
    "report": JOB_REPORT,
}


def download_links(ports: Ports, job_id: str, artifacts: Mapping[str, str]) -> dict[str, str]:
    """Presigned links to each of :data:`DOWNLOADS` the job has, valid for ``config.link_ttl_s``."""
    ttl = ports.config.link_ttl_s
    return {
        name: ports.objects.presign_get(artifacts[name], ttl, download_name(job_id, file_name))
        for name, file_name in DOWNLOADS.items()
        if name in artifacts
    }
