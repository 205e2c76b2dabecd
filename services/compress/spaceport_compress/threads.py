"""Torch's CPU thread count, for the compression job's loops of many small tensor operations.

Example::

    with one_cpu_thread(values.device):
        labels = lloyd_iterations(values)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Torch on one thread while inside, when ``device`` is the CPU; the count is restored after.

    Loops of small, memory-bound operations gain little from a second thread and lose a lot
    when the cores are busy: on the shared 2-core machine a 512^2 PLAS sort took 255 s with
    two threads against 59 s with one, and a 1-D codebook 5 s against 0.2 s.
    """
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
