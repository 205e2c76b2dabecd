"""How every stage job starts and ends, in a container or on a laptop.

:func:`run_job` turns an expected failure (:class:`~spaceport.errors.SpaceportError`) into
its plain message on stderr, its exit code, and SageMaker's failure file when the job runs
under SageMaker's layout. Anything else is a bug and keeps its traceback.

>>> from spaceport.errors import SpaceportError
>>> def body() -> int:
...     raise SpaceportError("The ZIP holds no photos.")
>>> import contextlib, io
>>> with contextlib.redirect_stderr(io.StringIO()) as err:
...     code = run_job(body)
>>> code, err.getvalue().strip()
(1, 'error: The ZIP holds no photos.')
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from spaceport.container import write_failure_reason
from spaceport.errors import SpaceportError

logger = logging.getLogger("spaceport")


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_job(body: Callable[[], int | None], failure_file: Path | None = None) -> int:
    """Run ``body``; map expected failures to their exit code and plain message."""
    try:
        return body() or 0
    except SpaceportError as error:
        print(f"error: {error.message}", file=sys.stderr, flush=True)
        if failure_file is not None:
            write_failure_reason(failure_file, error.message)
        return int(error.exit_code)
