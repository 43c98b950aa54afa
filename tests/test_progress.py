"""Progress bars and summary lines (diqa_tf.cli.progress), and a quiet native stderr."""

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from test_cli import run_cli

from diqa_tf.cli.progress import Progress, summary_line


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_is_drawn_on_a_terminal_and_removed():
    stream = Terminal()
    with Progress(4, "scoring", stream=stream, delay=0) as progress:
        progress.update(2)
        assert stream.getvalue().startswith("\rscoring 2/4 [" + "=" * 15 + " " * 15 + "]")
        with progress.paused():
            print("diqa: error: x.png: no such file", file=stream)
        progress._last_draw = 0  # let the next update redraw at once
        progress.update(2, failed=1)
    text = stream.getvalue()
    # The error line starts on a cleared line, the bar comes back after it.
    assert "\r\x1b[Kdiqa: error: x.png: no such file\n\rscoring 2/4" in text
    assert "scoring 4/4 [" + "=" * 30 + "]" in text and ", 1 failed" in text
    assert text.endswith("\r\x1b[K")  # closing leaves an empty line for the summary
    progress.summary("scored")
    assert stream.getvalue()[len(text):].startswith("scored 3 images, 1 failed, in ")


@pytest.mark.parametrize("stream, quiet", [(io.StringIO(), False), (Terminal(), True)],
                         ids=["not-a-terminal", "quiet"])
def test_no_bar_off_a_terminal_or_when_quiet(stream, quiet):
    progress = Progress(3, "scoring", quiet=quiet, stream=stream, delay=0)
    progress.update(3)
    progress.summary("scored")
    text = stream.getvalue()
    assert "\r" not in text
    if quiet:
        assert text == ""
    else:
        assert text.startswith("scored 3 images, 0 failed, in ") and text.count("\n") == 1


def test_short_work_shows_no_bar():
    stream = Terminal()
    with Progress(3, "scoring", stream=stream, delay=60) as progress:
        progress.update(3)
    assert stream.getvalue() == ""


def test_summary_line():
    assert summary_line("scored", 98, 2, 4.0) == (
        "scored 98 images, 2 failed, in 4.0 s (24.5 images/s)")
    assert summary_line("exported", 0, 0, 0.0, unit="models").startswith("exported 0 models")


def test_predict_quiet(capsys, tiny_quality_model_path, image_folder):
    status, out, err = run_cli(capsys, "predict", image_folder / "a.png", "--quiet",
                               "--model", tiny_quality_model_path)
    assert status == 0 and out.startswith("path,score\n")
    assert err == ""


# --- Native stderr ---------------------------------------------------------------------


def _run_python(code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **env})


SILENCED = """
    import os, sys
    from diqa_tf.cli.native_stderr import native_stderr_silenced
    with native_stderr_silenced():
        os.write(2, b"native line\\n")
        print("python line", file=sys.stderr)
    os.write(2, b"after\\n")
"""


def test_native_stderr_is_silenced_during_a_command():
    result = _run_python(SILENCED)
    assert result.stderr == "python line\nafter\n"


def test_diqa_tf_logs_shows_native_stderr():
    result = _run_python(SILENCED, DIQA_TF_LOGS="1")
    assert result.stderr == "native line\npython line\nafter\n"


def test_corrupt_jpeg_gives_one_line_not_libjpeg_warnings(
    capfd, tmp_path, textured_image, tiny_quality_model_path
):
    """A JPEG with damaged scan data still decodes, but libjpeg warns on fd 2; a cut-off
    one made libjpeg print too before failing. The user sees only diqa's lines."""
    Image.fromarray(textured_image(64, 64)).save(tmp_path / "good.jpg", quality=90)
    data = bytearray((tmp_path / "good.jpg").read_bytes())
    start = data.rindex(b"\xff\xda") + 40
    data[start : start + 100] = np.random.default_rng(0).integers(0, 255, 100, np.uint8).tobytes()
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(bytes(data))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes((tmp_path / "good.jpg").read_bytes()[:1000])
    tf.io.decode_image(bytes(data), channels=3)  # the premise: libjpeg warns on fd 2
    assert "Corrupt JPEG data" in capfd.readouterr().err

    script = Path(sys.executable).parent / "diqa"
    if not script.exists():
        pytest.skip("the `diqa` console script is not installed")
    result = subprocess.run(
        [str(script), "predict", str(damaged), str(cut),
         "--model", str(tiny_quality_model_path)],
        capture_output=True, text=True, timeout=300,
    )
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(f"diqa: error: {cut}: not a readable JPEG image")
    assert "truncated or corrupt" in lines[0]
    assert lines[1].startswith("scored 1 images, 1 failed, in ")
    assert result.stdout.splitlines()[1].startswith(f"{damaged},")
