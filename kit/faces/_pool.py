"""Many photos over worker processes (loky, from joblib): works from any entry point."""
from __future__ import annotations

import math
import os
import re
import threading
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from numbers import Integral

from .._utils.validation import Interval, validate_params
from ..progress import report
from ._detection import FaceSettings, _model, _photo_records


def _init_worker() -> None:
    """Runs once in each worker process: load the models every setting needs (the CNN detector loads on
    first use)."""
    _model("landmarks5"), _model("descriptor"), _model("hog")


def _work(chunk, settings: dict):
    s = FaceSettings(**settings)
    return [(i, *_photo_records(path, s)) for i, path in chunk]


POOL_MIN_PHOTOS = 100
#: Idle worker processes exit after this many seconds; a call within it reuses them (no start-up).
POOL_IDLE_SECONDS = 60

_POOL = None  # the kit's own loky executor (not joblib's shared one, which other libraries resize)
_POOL_LOCK = threading.Lock()


def _pool(workers: int):
    """The worker processes, started on first use and kept while busy or idle for less than
    ``POOL_IDLE_SECONDS``. loky starts fresh interpreters that never import the caller's ``__main__``
    (a script without a main guard, stdin, ``python -c``, Jupyter and Streamlit all work) and does not fork
    a threaded parent."""
    global _POOL
    from joblib.externals.loky import ProcessPoolExecutor

    with _POOL_LOCK:
        pool = _POOL
        if pool is None or pool._flags.broken or pool._flags.shutdown or pool._max_workers != workers:
            if pool is not None:
                pool.shutdown(wait=False)  # lets another thread's pending photos finish, then its workers exit
            pool = _POOL = ProcessPoolExecutor(max_workers=workers, timeout=POOL_IDLE_SECONDS,
                                               initializer=_init_worker)
        return pool


def shutdown_pool() -> None:
    """Stop the idle worker processes now instead of after ``POOL_IDLE_SECONDS`` (they also stop when
    Python exits)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown(wait=True)


def processes_for(n_photos: int, settings: FaceSettings, num_workers: int | None = None) -> int:
    """How many processes :func:`map_photos` uses for ``n_photos`` (1: it works in this process).

    ``num_workers=None``: all cores, once there are ``POOL_MIN_PHOTOS`` photos (HOG or crops) or two per
    core (CNN). A number: that many processes whenever there are at least two photos per process.
    """
    validate_params({"num_workers": [Interval(Integral, 1, None, closed="left"), None]},
                    {"num_workers": num_workers}, "processes_for")
    workers = int(num_workers or os.cpu_count() or 1)
    minimum = 2 * workers
    if num_workers is None and not (settings.detector == "cnn" and not settings.crop_as_face):
        minimum = max(minimum, POOL_MIN_PHOTOS)
    return workers if n_photos >= minimum else 1


def map_photos(paths, settings: FaceSettings | None = None, num_workers: int | None = None, progress=None,
               chunk_size: int | None = None):
    """Face records of every photo, spread over ``num_workers`` processes (default: all cores).

    Yields ``(index, records, reason)`` as photos finish (any order): ``records`` as in
    :func:`faces_in_image` (zero rows: no face found), or None with the decoding ``reason``.
    :func:`processes_for` decides how many processes run: on 2 cores (``bench/faces.py``) one process
    does 15-16 photos/s (HOG, 150 px photos) and two do about twice that once started, but workers started
    by the call give their first result after about 5 s (each is a fresh interpreter that imports the kit,
    numpy, pandas and scikit-learn, then loads the models), so on such small photos the pool pays off from
    about 150 photos; larger photos cost more each (detection) and reach it sooner, hence the compromise
    ``POOL_MIN_PHOTOS``. A call while the workers are still there (idle for less than ``POOL_IDLE_SECONDS``)
    starts at once. The worker processes are loky's (from joblib): they work from any entry point
    (scripts without ``if __name__ == "__main__":``, stdin, ``python -c``, notebooks, Streamlit), stay for
    ``POOL_IDLE_SECONDS`` after the call for the next one (:func:`shutdown_pool` stops them now), and a
    worker that dies (out of memory, a crash in dlib) raises a RuntimeError instead of hanging.
    """
    s = (settings or FaceSettings()).validated()
    paths = list(paths)
    n = len(paths)
    workers = processes_for(n, s, num_workers)
    done = 0
    report(progress, 0, n, "faces")
    if workers == 1:
        for i, p in enumerate(paths):
            records, reason = _photo_records(p, s)
            done += 1
            yield i, records, reason
            report(progress, done, n, "faces")
        return
    size = chunk_size or max(1, min(4, math.ceil(n / (workers * 4))))
    items = list(enumerate(paths))
    chunks = [items[k:k + size] for k in range(0, n, size)]
    settings_dict = asdict(s)
    pool = _pool(int(workers))
    pending = set()
    try:
        pending = {pool.submit(_work, chunk, settings_dict) for chunk in chunks}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                try:
                    result = fut.result()
                except BrokenProcessPool as exc:
                    codes = re.search(r"exit codes of the workers are (\S+)", str(exc))
                    raise RuntimeError(
                        f"num_workers={workers}: a face worker process stopped unexpectedly"
                        f"{' (exit code ' + codes.group(1) + ')' if codes else ''}: it was killed (often for "
                        f"lack of memory) or crashed in dlib. Pass num_workers=1 to work in this process and see "
                        f"the error, or fewer workers if memory is short") from exc
                for item in result:
                    done += 1
                    yield item
                report(progress, done, n, "faces")
    finally:
        for fut in pending:  # the caller stopped early or a worker died: drop what has not started
            fut.cancel()

