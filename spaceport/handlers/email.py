"""The emails a user receives: the result with its links, or the failure with what to try.

Both are rendered in HTML and plain text from the same facts.

>>> record = JobRecord(job_id="0a1b2c3d4e5f6a7b", email="pilot@example.com", input_uri="s3://u/p.zip")
>>> links = ResultLinks(viewer="https://spaceport.example.com/view/0a1b2c3d4e5f6a7b",
...                     job_page="https://spaceport.example.com/jobs/0a1b2c3d4e5f6a7b",
...                     share="https://spaceport.example.com/view/share/tOkEn")
>>> email = success_email(record, {"train_psnr": 24.5}, links, sender="spaceport@example.com")
>>> email.subject, "Held-out PSNR: 24.50 dB" in email.text
('Your 3D scene is ready (job 0a1b2c3d4e5f6a7b)', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from spaceport.contracts.job import JobRecord
from spaceport.contracts.stages import Stage
from spaceport.ports import Email

WHAT_TO_TRY = {
    Stage.SFM: "Check that the ZIP holds the flight's photos (JPEG, PNG or TIFF) with plenty of overlap "
    "(60-80% between neighbours) and a few angled shots. You can also reprocess with "
    'options {"matcher": "exhaustive"}.',
    Stage.TRAIN: 'Reprocess from training with the quick preset (options {"preset": "quick"}) or fewer steps; '
    "if the photos were placed poorly, reprocess from sfm with another matcher.",
    Stage.COMPRESS: "Reprocess from the compress stage; the trained .ply is kept, so training does not run again.",
}
TRY_AGAIN_LATER = "This looks like a temporary problem on our side: reprocess the job in a few minutes."
# Advice for failures that are not about the photos or the stage's work.
ADVICE_BY_CODE = {
    "launch_refused": "Nothing is wrong with your photos: the job could not be started. Once the cause above "
    "is fixed, reprocess the job from that stage.",
    "time_limit": "A capture this large needs more time than the limit allows: reprocess with the quick preset "
    '(options {"preset": "quick"}) or fewer photos, or ask the operator for a longer limit.',
    "stalled": "We lost track of the job: reprocess it from that stage.",
}
TEMPORARY_CODES = ("infrastructure", "job_crashed", "job_stopped")


@dataclass(frozen=True)
class ResultLinks:
    """Where the user goes from the email: the viewer, the job page with fresh download links (both
    for the signed-in owner), and the share link anyone may open until the owner revokes it.

    The email carries no presigned link: one signed by the notify Lambda would die with its
    temporary credentials, hours before a user might open the email. The job page signs fresh
    links at every visit.
    """

    viewer: str
    job_page: str
    share: str


# A failure reason is the job's own words; the email shows at most this much of it.
MAX_REASON_CHARS = 500


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def result_facts(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline figures a user sees: photos used, held-out PSNR, output size."""
    facts: list[tuple[str, str]] = []
    registered, used = summary.get("sfm_images_registered"), summary.get("sfm_images_used")
    if registered is not None:
        facts.append(("Photos used", f"{registered} of {used}" if used is not None else str(registered)))
    psnr = summary.get("train_psnr")  # measured by the training job on the photos it held out
    if isinstance(psnr, (int, float)):
        facts.append(("Held-out PSNR", f"{psnr:.2f} dB"))
    if isinstance(summary.get("compress_sog_bytes"), (int, float)):
        facts.append(("Output size (.sog)", human_size(summary["compress_sog_bytes"])))
    if isinstance(summary.get("train_ply_bytes"), (int, float)):
        facts.append(("Full splat (.ply)", human_size(summary["train_ply_bytes"])))
    return facts


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
        f'<body style="font-family:sans-serif;max-width:40em"><h1>{escape(title)}</h1>{body}</body></html>'
    )


def success_email(record: JobRecord, summary: dict[str, Any], links: ResultLinks, sender: str) -> Email:
    """Your scene is ready: the viewer, the job page with the downloads, the figures."""
    title = "Your 3D scene is ready"
    facts = result_facts(summary)
    text = [
        f"{title} (job {record.job_id}, run {record.run_id}).",
        "",
        f"View it in your browser: {links.viewer}",
        f"Download the scene (.sog, .spz, .glb), the full splat (.ply) and the report from the job page: {links.job_page}",
        f"Share it: anyone with this link can view the scene (revoke it on the job page): {links.share}",
        "",
        *(f"{label}: {value}" for label, value in facts),
    ]
    html = (
        f"<p>Job <code>{escape(record.job_id)}</code> (run {escape(record.run_id)}) finished.</p>"
        f'<p><a href="{escape(links.viewer)}">View it in your browser</a></p>'
        f'<p><a href="{escape(links.job_page)}">Download the scene (.sog, .spz, .glb), the full splat (.ply) and the report</a> '
        "from the job page.</p>"
        f'<p><a href="{escape(links.share)}">Share link</a>: anyone with it can view the scene '
        "(revoke it or make a new one on the job page).</p><table>"
        + "".join(f'<tr><th align="left">{escape(label)}</th><td>{escape(value)}</td></tr>' for label, value in facts)
        + "</table>"
    )
    return Email(
        to=record.email,
        sender=sender,
        subject=f"{title} (job {record.job_id})",
        text="\n".join(text) + "\n",
        html=_page(title, html),
    )


def failure_email(record: JobRecord, stage: Stage, code: str, reason: str, sender: str, status_url: str) -> Email:
    """We could not finish: which stage, why, what to try."""
    title = "We could not finish your 3D scene"
    if code in ADVICE_BY_CODE:
        advice = ADVICE_BY_CODE[code]
    else:
        advice = TRY_AGAIN_LATER if code in TEMPORARY_CODES else WHAT_TO_TRY.get(stage, TRY_AGAIN_LATER)
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 1] + "…"
    text = (
        f"{title} (job {record.job_id}, run {record.run_id}).\n\n"
        f"Stage: {stage.value}\nReason: {reason}\n\nWhat to try: {advice}\n\nStatus: {status_url}\n"
    )
    html = (
        f"<p>Job <code>{escape(record.job_id)}</code> (run {escape(record.run_id)}) stopped at the "
        f"<b>{escape(stage.value)}</b> stage.</p><p><b>Reason:</b> {escape(reason)}</p>"
        f'<p><b>What to try:</b> {escape(advice)}</p><p><a href="{escape(status_url)}">Job status</a></p>'
    )
    return Email(
        to=record.email, sender=sender, subject=f"{title} (job {record.job_id})", text=text, html=_page(title, html)
    )
