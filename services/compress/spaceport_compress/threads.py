"""Torch's CPU thread count, for the compression job's loops of many small tensor operations.

>>> before = torch.get_num_threads()
>>> with one_cpu_thread(torch.device("cpu")):
...     torch.get_num_threads()
1
>>> torch.get_num_threads() == before
True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Torch on one thread while inside, when ``device`` is the CPU; the count is restored after.

    Loops of small, memory-bound operations gain little from a second thread and lose a lot
    when the cores are busy with other work (docs/BENCHMARKS.md, PLAS and the codebooks).
    """
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
