"""`diqa evaluate --report DIR`: the plots, predictions.csv and the one-page HTML report.

The report is made once per module from 9 tiny images of 3 distortion types. The
`browser` test opens it in real headless Chromium and checks that it renders and
that every picture loads (skipped where no chromium binary is installed).
"""

import base64
import contextlib
import csv
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from test_cli import assert_no_traceback, error_lines, run_cli

from diqa_tf import cli

TYPES = ("blur", "jpeg", "noise")


@pytest.fixture(scope="module")
def typed_csv(tmp_path_factory, textured_image):
    """scores.csv (image,mos,distortion): 9 images of 32x32, three of each type."""
    folder = tmp_path_factory.mktemp("typed")
    rng = np.random.default_rng(3)
    lines = ["image,mos,distortion"]
    for i in range(9):
        image = textured_image(32, 32, seed=i).astype(np.float32)
        image = np.clip(image + rng.normal(0, 4 * i + 1, image.shape), 0, 255)
        Image.fromarray(image.astype(np.uint8)).save(folder / f"i{i}.png")
        lines.append(f"i{i}.png,{90 - 8 * i},{TYPES[i % 3]}")
    (folder / "scores.csv").write_text("\n".join(lines) + "\n")
    return folder / "scores.csv"


@pytest.fixture(scope="module")
def report(tmp_path_factory, typed_csv, tiny_quality_model_path):
    """(folder, exit status, stdout) of one `evaluate --report` run."""
    folder = tmp_path_factory.mktemp("report") / "report"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(["evaluate", "--model", str(tiny_quality_model_path),
                           "--csv", str(typed_csv), "--report", str(folder)])
    assert status == 0, err.getvalue()
    return folder, out.getvalue()


def test_report_files(report):
    folder, out = report
    assert sorted(p.name for p in folder.iterdir()) == [
        "distortions.png", "index.html", "predictions.csv", "scatter.png"]
    assert f"report: {folder / 'index.html'}" in out
    for name in ("scatter.png", "distortions.png"):
        with Image.open(folder / name) as picture:
            assert picture.format == "PNG" and min(picture.size) > 200
            assert np.asarray(picture.convert("L")).std() > 10  # not a blank canvas


def test_report_predictions_csv_matches_printed_metrics(report):
    folder, out = report
    rows = list(csv.DictReader((folder / "predictions.csv").read_text().splitlines()))
    assert len(rows) == 9
    assert {r["distortion"] for r in rows} == set(TYPES)
    assert all(r["image"].endswith(".png") for r in rows)
    srcc = float(re.search(r"^SRCC\s+(\S+)$", out, re.M).group(1))
    from scipy import stats

    scores = [float(r["score"]) for r in rows]
    mos = [float(r["mos"]) for r in rows]
    assert stats.spearmanr(scores, mos)[0] == pytest.approx(srcc, abs=1e-4)


def test_report_page_is_self_contained(report):
    folder, out = report
    page = (folder / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 2
    for source in sources:  # embedded, so the page works when mailed alone
        assert source.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).verify()
    srcc = re.search(r"^SRCC\s+(\S+)$", out, re.M).group(1)
    assert f"<th>SRCC</th><td>{srcc}</td>" in page
    for kind in TYPES:
        assert f"<td>{kind}</td><td>3</td>" in page
    assert 'href="predictions.csv"' in page


def test_report_without_distortion_types(capsys, scored_csv, tiny_quality_model_path, tmp_path):
    status, out, err = run_cli(capsys, "evaluate", "--model", tiny_quality_model_path,
                               "--csv", scored_csv, "--report", tmp_path / "r", "--quiet")
    assert status == 0, err
    assert err == ""  # --quiet: no summary line
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "index.html", "predictions.csv", "scatter.png"]
    assert "per distortion type" not in (tmp_path / "r" / "index.html").read_text().lower()


def test_report_without_matplotlib_fails_before_scoring(
    capsys, monkeypatch, scored_csv, tiny_quality_model_path, tmp_path
):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    status, out, err = run_cli(capsys, "evaluate", "--model", tiny_quality_model_path,
                               "--csv", scored_csv, "--report", tmp_path / "r")
    assert status == 1
    assert_no_traceback(err)
    assert error_lines(err) == [
        "diqa: error: pictures need matplotlib: pip install 'diqa-tf[viz]' "
        "(or pip install matplotlib)"]
    assert err.count("\n") == 1 and out == ""  # nothing scored, nothing printed
    assert not (tmp_path / "r").exists()


# --- In a real browser ------------------------------------------------------------------

# Appended to a copy of the page: once everything has loaded, record how many of its
# pictures decoded (complete, with a natural width) on the body, for --dump-dom.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const loaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-loaded", loaded + "/" + images.length);
});
</script>"""


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium)")


def _loaded_in_chromium(page_path, tmp_path):
    """The probe's `loaded/total` after headless Chromium has loaded `page_path`."""
    probed = page_path.with_name(f"probe_{page_path.name}")
    probed.write_text(page_path.read_text().replace("</body>", PROBE + "</body>"))
    result = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=5000",
         "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    probed.unlink()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "<h1>DIQA evaluation" in result.stdout  # it rendered our page
    found = re.search(r'data-loaded="(\d+)/(\d+)"', result.stdout)
    assert found, result.stdout[-2000:]
    return int(found.group(1)), int(found.group(2))


@pytest.mark.browser
def test_report_renders_in_chromium(report, tmp_path):
    folder, _ = report
    page = tmp_path / "index.html"
    shutil.copy(folder / "index.html", page)  # alone: the pictures must be embedded
    assert _loaded_in_chromium(page, tmp_path) == (2, 2)
    # The probe can fail: a page whose second picture is broken counts 1 of 2.
    text = page.read_text()
    second = text.index('src="data:image/png;base64,', text.index("<img") + 4)
    broken = text[:second] + 'src="data:image/png;base64,AAAA' + text[second + 27:]
    page.write_text(broken)
    assert _loaded_in_chromium(page, tmp_path) == (1, 2)
