"""A progress bar and a closing summary line for commands that work through many items.

Any command can use it (`predict`, `explain`, `evaluate`; later `export`, `convert`):

    with Progress(len(paths), "scoring", quiet=args.quiet) as progress:
        for path in paths:
            ...
            progress.update(1, failed=0 if ok else 1)
    progress.summary("scored")  # "scored 98 images, 2 failed, in 4.1 s (23.9 images/s)"

The bar is drawn on stderr only when stderr is a terminal, the command is not
`--quiet`, and the work has already taken `delay` seconds (short runs stay silent);
pipes, logs and CI see only the summary line. Lines printed inside
`with progress.paused():` clear the bar first, so errors never mix into it.
"""

import contextlib
import shutil
import sys
import time

BAR_WIDTH = 30


class Progress:
    """Counts finished and failed items; draws `label  12/40 [====    ] 3.1 images/s`."""

    def __init__(self, total, label, quiet=False, unit="images", stream=None, delay=0.5):
        self.total = total
        self.label = label
        self.quiet = quiet
        self.unit = unit
        self.stream = stream or sys.stderr
        self.delay = delay
        self.done = 0
        self.failed = 0
        self.start = time.monotonic()
        self._drawn = False
        self._last_draw = 0.0
        self.visible = not quiet and _is_terminal(self.stream)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def seconds(self):
        return time.monotonic() - self.start

    def update(self, n=1, failed=0):
        """`n` more items finished, `failed` of them failed; redraws at most 10 times a second."""
        self.done += n
        self.failed += failed
        now = time.monotonic()
        if self.visible and now - self.start >= self.delay and now - self._last_draw >= 0.1:
            self._draw()
            self._last_draw = now

    @contextlib.contextmanager
    def paused(self):
        """Print inside it (an error, a result line) without tearing the bar."""
        self._clear()
        try:
            yield
        finally:
            sys.stdout.flush()
            if self._drawn:
                self._draw()

    def close(self):
        """Remove the bar (the summary replaces it)."""
        self._clear()
        self._drawn = False

    def summary(self, verb, succeeded=None, failed=None):
        """Print the closing line, e.g. `scored 8 images, 1 failed, in 2.0 s (3.5 images/s)`.

        Counts default to the bar's own; pass them where failures happened outside
        it (inputs that matched no file). Silent with `quiet`.
        """
        self.close()
        failed = self.failed if failed is None else failed
        succeeded = self.done - self.failed if succeeded is None else succeeded
        if not self.quiet:
            print(summary_line(verb, succeeded, failed, self.seconds, self.unit),
                  file=self.stream, flush=True)

    def _draw(self):
        columns = shutil.get_terminal_size((80, 24)).columns
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(BAR_WIDTH * min(fraction, 1.0)))
        rate = self.done / max(self.seconds, 1e-9)
        text = (f"{self.label} {self.done}/{self.total} "
                f"[{'=' * filled}{' ' * (BAR_WIDTH - filled)}] {rate:.1f} {self.unit}/s")
        if self.failed:
            text += f", {self.failed} failed"
        if 0 < self.done < self.total:
            text += f", {(self.total - self.done) / rate:.0f} s left"
        self.stream.write("\r" + text[: columns - 1] + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def _clear(self):
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def summary_line(verb, succeeded, failed, seconds, unit="images"):
    """`VERB N UNIT, N failed, in S s (R UNIT/s)`: the last line of a long command."""
    return (f"{verb} {succeeded} {unit}, {failed} failed, in {seconds:.1f} s "
            f"({succeeded / max(seconds, 1e-9):.1f} {unit}/s)")


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def add_quiet_option(parser):
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar and no summary line (errors are still printed)")
