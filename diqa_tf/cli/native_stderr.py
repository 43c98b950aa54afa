"""Keep native libraries' own stderr lines off the user's terminal during a command.

libjpeg (inside TF's decoder) prints warnings such as "Corrupt JPEG data: premature
end of data segment" straight to file descriptor 2, and TF's C++ code logs there too,
beside the one `diqa: error:` line a bad file gets. While a command runs, fd 2 goes to
/dev/null and Python's `sys.stderr` (errors, progress, summaries) writes to a copy of
the real stderr. `discarded` hides Python's writes as well (TF start-up, the TFLite
converter). Set DIQA_TF_LOGS=1 to see the native lines.
"""

import contextlib
import functools
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """Discard what C/C++ code writes to fd 2; Python's sys.stderr still reaches the user."""
    if os.environ.get("DIQA_TF_LOGS"):
        yield
        return
    python_stderr = sys.stderr
    python_stderr.flush()
    saved = os.dup(2)
    # Where sys.stderr is fd 2 itself (a real run, not a test's capture), point it at a
    # copy of fd 2, which keeps the terminal (isatty) while fd 2 goes to /dev/null.
    if _is_fd2(python_stderr):
        sys.stderr = open(os.dup(saved), "w", buffering=1, encoding=python_stderr.encoding,
                          errors="backslashreplace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if sys.stderr is not python_stderr:
            sys.stderr.close()
            sys.stderr = python_stderr


@contextlib.contextmanager
def discarded(*fds):
    """Send file descriptors `fds` to /dev/null, Python's writes to them included."""
    if os.environ.get("DIQA_TF_LOGS"):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    try:
        with open(os.devnull, "w") as devnull:
            for fd in fds:
                os.dup2(devnull.fileno(), fd)
            yield
    finally:
        for fd, copy in zip(fds, saved):
            os.dup2(copy, fd)
            os.close(copy)


def silence_native_stderr(function):
    """Decorator: run a command's `run(args)` inside `native_stderr_silenced()`."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with native_stderr_silenced():
            return function(*args, **kwargs)

    return wrapper


def _is_fd2(stream):
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # capture objects have no real fd
        return False
