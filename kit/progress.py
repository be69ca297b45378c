"""The one progress convention of the kit: ``progress(done: int, total: int, stage: str)``.

Long calls take ``progress=None`` or such a callable. The CLI passes ``TqdmProgress()``; the
dashboard passes a function that updates ``st.progress``. A callback may raise to stop the work.
"""
from __future__ import annotations


class TqdmProgress:
    """A progress callback that draws a tqdm bar per stage (used by the CLI)."""

    def __init__(self, **tqdm_kwargs):
        self._kw = tqdm_kwargs
        self._bar = None
        self._stage = None

    def __call__(self, done: int, total: int, stage: str = "") -> None:
        from tqdm.auto import tqdm

        if self._bar is None and stage == self._stage and done >= total:
            return  # this stage's bar is already finished
        if self._bar is None or stage != self._stage:
            self.close()
            self._bar = tqdm(total=total, desc=stage or None, unit="img", **self._kw)
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
