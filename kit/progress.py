"""The one progress convention of the kit: ``progress(done: int, total: int, stage: str)``.

Long calls take ``progress=None`` or such a callable. The CLI passes ``TqdmProgress()``; the
dashboard passes a function that updates ``st.progress``. A callback may raise to stop the work.
"""
from __future__ import annotations


def _bar_class():
    """``tqdm.auto.tqdm`` without its monitor thread.

    tqdm starts a process-wide ``TMonitor`` thread with the first bar; it outlives the call and, every 10 s,
    may redraw a bar from that thread. Inside a Jupyter kernel that means output from a thread after the cell has
    finished, which is exactly what a kernel must never see. Our bars are redrawn by each ``progress`` call, so
    the monitor buys nothing: a subclass with ``monitor_interval = 0`` never starts it (no global setting is
    changed).
    """
    global _BAR
    if _BAR is None:
        from tqdm.auto import tqdm

        _BAR = type("KitTqdm", (tqdm,), {"monitor_interval": 0})
    return _BAR


_BAR = None


class TqdmProgress:
    """A progress callback that draws a tqdm bar per stage (used by the CLI and the notebooks).

    It starts no thread: every redraw happens inside the ``progress`` call, in the caller's thread.
    """

    def __init__(self, **tqdm_kwargs):
        self._kw = tqdm_kwargs
        self._bar = None
        self._stage = None

    def __call__(self, done: int, total: int, stage: str = "") -> None:
        if self._bar is None and stage == self._stage and done >= total:
            return  # this stage's bar is already finished
        if self._bar is not None and stage != self._stage and total == self._bar.total and done >= self._bar.n:
            self._bar.set_description(stage or None, refresh=False)  # the next stage of the same count: one bar
            self._stage = stage
        elif self._bar is None or stage != self._stage:
            self.close()
            self._bar = _bar_class()(total=total, desc=stage or None, unit="img", **self._kw)
            self._stage = stage
        self._bar.total = total
        self._bar.n = done
        self._bar.refresh()
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def report(progress, done: int, total: int, stage: str) -> None:
    """Call ``progress`` if given."""
    if progress is not None:
        progress(done, total, stage)
