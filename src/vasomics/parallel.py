"""Thread-parallel map for work whose compiled kernels release the GIL (NumPy's
partition and gathers, SciPy's ndimage filters): results are those of the serial loop, in
task order, whatever the number of threads."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor


def threaded_map(func, tasks: list) -> list:
    """``[func(*t) for t in tasks]`` on up to ``os.cpu_count()`` threads; results in task
    order."""
    workers = min(len(tasks), os.cpu_count() or 1)
    if workers <= 1:
        return [func(*t) for t in tasks]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda t: func(*t), tasks))
