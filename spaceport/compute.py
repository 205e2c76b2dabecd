"""Where a stage job computes: on CUDA when the machine has it, else on every CPU core.

Production jobs use the whole instance that infra gives them. Only the local job runner caps
them, by setting :data:`THREADS_ENV` for the jobs it starts side by side on a laptop, so no
thread count tuned for a development machine is ever written into a job.

>>> import os
>>> os.environ[THREADS_ENV] = "1"
>>> cpu_threads()
1
>>> del os.environ[THREADS_ENV]
>>> cpu_threads() == len(os.sched_getaffinity(0))
True
"""

from __future__ import annotations

import os

from spaceport.config import ConfigError

THREADS_ENV = "SPACEPORT_CPU_THREADS"


def cpu_threads() -> int:
    """The CPU threads a job may use: the cap the local runner set, else every core it may run on."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return len(os.sched_getaffinity(0))
    try:
        threads = int(value)
    except ValueError:
        raise ConfigError(f"{THREADS_ENV} must be a whole number of threads, not {value!r}.") from None
    if threads < 1:
        raise ConfigError(f"{THREADS_ENV} must be at least 1, not {threads}.")
    return threads


def torch_device(requested: str = "auto") -> str:
    """``"cuda"`` or ``"cpu"`` for a job asked for ``requested`` (``auto`` | ``cuda`` | ``cpu``).

    Also sets torch's CPU thread count to :func:`cpu_threads`.
    """
    import torch

    torch.set_num_threads(cpu_threads())
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested
