"""The IQA database loaders, on tiny replicas of each original layout, and `diqa evaluate
--database`.

Each replica keeps the real file names and score-file formats (the .mat variables, CSIQ's
workbook with its header on row 4, TID's mixed-case names) with a handful of 16..24 px
images. Nothing here reads /work/shared/data.
"""

import csv
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from scipy import io as sio

from diqa_tf import cli
from diqa_tf.config import ScoreScale
from diqa_tf.data.databases import DATABASES, get_database
from diqa_tf.data.databases import csv_file, live
from diqa_tf.errors import DatasetError

from test_cli import assert_no_traceback, error_lines, run_cli


def _image(path, seed=0):
    """A small noisy image, 16..24 px a side, in the format of the file's suffix."""
    rng = np.random.default_rng(seed)
    height, width = rng.integers(16, 25, size=2)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, pixels, extension=path.suffix.lower())
    return path


def _cell(names, shape=(1, -1)):
    """A MATLAB cell array of strings (what savemat writes for an object array)."""
    return np.array(names, dtype=object).reshape(shape)


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


# --- Replicas -------------------------------------------------------------------------


# LIVE: (folder, reference) per entry, in the order of dmos.mat; the jpeg entry marked
# `orgs == 1` is a copy of its reference and must be left out.
LIVE_ENTRIES = [
    ("jp2k", "bikes.bmp"), ("jp2k", "house.bmp"), ("jp2k", "bikes.bmp"),
    ("jpeg", "house.bmp"), ("jpeg", "bikes.bmp"),
    ("wn", "bikes.bmp"), ("wn", "house.bmp"),
    ("gblur", "house.bmp"), ("gblur", "bikes.bmp"),
    ("fastfading", "bikes.bmp"), ("fastfading", "house.bmp"),
]
LIVE_REFERENCE_COPY = 4  # jpeg/img2.bmp


def build_live(root, realigned=False):
    for seed, name in enumerate(("bikes.bmp", "house.bmp")):
        _image(root / "refimgs" / name, seed)
    info = {}
    for i, (folder, reference) in enumerate(LIVE_ENTRIES):
        k = sum(1 for f, _ in LIVE_ENTRIES[:i] if f == folder) + 1
        _image(root / folder / f"img{k}.bmp", 10 + i)
        info.setdefault(folder, []).append(f"{reference} img{k}.bmp {0.5 * k}")
    for folder, lines in info.items():
        (root / folder / "info.txt").write_text("\n".join(lines) + "\n")
    n = len(LIVE_ENTRIES)
    orgs = np.zeros((1, n))
    orgs[0, LIVE_REFERENCE_COPY] = 1
    dmos = np.arange(n, dtype=float).reshape(1, n) * 5.0 + 10.0
    dmos[0, LIVE_REFERENCE_COPY] = 0.0
    sio.savemat(root / "dmos.mat", {"dmos": dmos, "orgs": orgs})
    sio.savemat(root / "refnames_all.mat", {"refnames_all": _cell([r for _, r in LIVE_ENTRIES])})
    if realigned:
        sio.savemat(
            root / "dmos_realigned.mat",
            {"dmos_new": dmos + 0.5, "dmos_std": np.ones((1, n)), "orgs": orgs},
        )
    return root


# CSIQ: (image, dst_type, level, file name on disk); the jpeg file's token is in the
# "wrong" case, as happens in the archive.
CSIQ_ROWS = [
    ("1600", "noise", 1, "1600.AWGN.1.png"),
    ("1600", "jpeg", 4, "1600.jpeg.4.png"),
    ("1600", "contrast", 3, "1600.contrast.3.png"),
    ("aerial_city", "jpeg 2000", 2, "aerial_city.jpeg2000.2.png"),
    ("aerial_city", "blur", 1, "aerial_city.BLUR.1.png"),
    ("aerial_city", "fnoise", 5, "aerial_city.fnoise.5.png"),
]
CSIQ_FOLDERS = {"noise": "awgn", "jpeg": "jpeg", "contrast": "contrast", "jpeg 2000": "jpeg2000",
                "blur": "blur", "fnoise": "fnoise"}


def build_csiq(root):
    import openpyxl

    for seed, name in enumerate(("1600", "aerial_city")):
        _image(root / "src_imgs" / f"{name}.png", seed)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "all_by_image"
    sheet.append(["CSIQ DMOS, by image"])
    sheet.append([])
    sheet.append([])
    sheet.append(["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"])
    for i, (image, kind, level, file_name) in enumerate(CSIQ_ROWS):
        _image(root / "dst_imgs" / CSIQ_FOLDERS[kind] / file_name, 10 + i)
        cell = int(image) if image.isdigit() else image  # the release stores 1600 as a number
        sheet.append([cell, i + 1, kind, level, 0.02, 0.1 * (i + 1)])
    book.save(root / "csiq.DMOS.xlsx")
    return root


def build_tid(root, files):
    """`files`: (name in mos_with_names.txt, name on disk, MOS)."""
    _image(root / "reference_images" / "I01.BMP", 0)
    _image(root / "reference_images" / "i25.bmp", 1)
    for i, (_, on_disk, _) in enumerate(files):
        _image(root / "distorted_images" / on_disk, 10 + i)
    lines = [f"{mos:.5f} {listed}" for listed, _, mos in files]
    (root / "mos_with_names.txt").write_text("\r\n".join(lines) + "\r\n")
    return root


TID2013_FILES = [
    ("i01_01_1.bmp", "i01_01_1.bmp", 5.5),
    ("i01_08_3.bmp", "i01_08_3.bmp", 4.1),
    ("i25_10_1.bmp", "I25_10_1.BMP", 6.2),  # upper case on disk
    ("i25_24_5.bmp", "i25_24_5.bmp", 1.3),
]
TID2008_FILES = [
    ("i01_01_1.bmp", "i01_01_1.bmp", 5.5),
    ("i25_17_4.bmp", "I25_17_4.BMP", 2.0),
    ("i25_08_2.bmp", "i25_08_2.bmp", 4.4),
]


KADID_ROWS = [("I01_01_01.png", "I01.png", 4.6), ("I01_10_03.png", "I01.png", 3.1),
              ("I02_25_05.png", "I02.png", 1.4), ("I02_19_02.png", "I02.png", 3.9)]


def build_kadid10k(root):
    for seed, name in enumerate(("I01.png", "I02.png")):
        _image(root / "images" / name, seed)
    for i, (name, _, _) in enumerate(KADID_ROWS):
        _image(root / "images" / name, 10 + i)
    _write_csv(root / "dmos.csv", ["dist_img", "ref_img", "dmos", "var"],
               [(d, r, m, 0.5) for d, r, m in KADID_ROWS])
    return root


KONIQ_IMAGES = ["10004473376.jpg", "10007357496.jpg", "10082478986.jpg"]
KONIQ_SETS = ["training", "validation", "test"]


def build_koniq10k(root, with_sets=False, folder="1024x768"):
    for i, name in enumerate(KONIQ_IMAGES):
        _image(root / folder / name, i)
    if with_sets:
        _write_csv(root / "koniq10k_distributions_sets.csv",
                   ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "set"],
                   [(n, 0, 10, 50, 30, 10, 100, 3.4 + i / 10, 0.7, s)
                    for i, (n, s) in enumerate(zip(KONIQ_IMAGES, KONIQ_SETS))])
    else:
        # The release quotes its header and values.
        lines = ['"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore"']
        lines += [f'"{n}",0,10,50,30,10,100,{3.4 + i / 10},0.7,{60 + i}'
                  for i, n in enumerate(KONIQ_IMAGES)]
        (root / "koniq10k_scores_and_distributions.csv").write_text("\n".join(lines) + "\n")
    return root


CLIVE_TRAINING = [f"t{i}.bmp" for i in range(1, 8)]
CLIVE_IMAGES = ["100.bmp", "1000.JPG", "1004.jpg"]


def build_clive(root):
    for i, name in enumerate(CLIVE_TRAINING):
        _image(root / "Images" / "trainingImages" / name, i)
    for i, name in enumerate(CLIVE_IMAGES):
        _image(root / "Images" / name, 10 + i)
    names = CLIVE_TRAINING + [n.lower() for n in CLIVE_IMAGES]  # the .mat says 1000.jpg
    n = len(names)
    (root / "Data").mkdir()
    sio.savemat(root / "Data" / "AllImages_release.mat",
                {"AllImages_release": _cell(names, (-1, 1))})
    sio.savemat(root / "Data" / "AllMOS_release.mat",
                {"AllMOS_release": np.linspace(20, 80, n).reshape(1, n)})
    sio.savemat(root / "Data" / "AllStdDev_release.mat", {"AllStdDev_release": np.ones((1, n))})
    return root


BUILDERS = {
    "live": build_live,
    "csiq": build_csiq,
    "tid2013": lambda root: build_tid(root, TID2013_FILES),
    "tid2008": lambda root: build_tid(root, TID2008_FILES),
    "kadid10k": build_kadid10k,
    "koniq10k": build_koniq10k,
    "clive": build_clive,
}


@pytest.fixture
def replica(tmp_path):
    """Factory: replica(name) -> the root of a tiny copy of that database's layout."""

    def make(name, **options):
        return BUILDERS[name](tmp_path / name, **options)

    return make


# --- One test per loader ----------------------------------------------------------------


def _assert_files_exist(records):
    for r in records:
        assert Path(r.path).is_file(), r.path
        assert r.reference is None or Path(r.reference).is_file(), r.reference


def _load(replica, name, scale, count):
    """The records of a replica of database `name`, checked for its score scale,
    their number and that their files exist."""
    database = get_database(name)
    assert database.scale == scale
    records = database.load(replica(name))
    assert len(records) == count
    _assert_files_exist(records)
    return records


def test_live(replica):
    assert not get_database("live").authentic
    scale = ScoreScale(0.0, 100.0, higher_is_better=False)
    records = _load(replica, "live", scale, len(LIVE_ENTRIES) - 1)
    names = [(Path(r.path).parent.name, Path(r.path).name) for r in records]
    assert ("jpeg", "img2.bmp") not in names  # the reference copy
    assert names[:3] == [("jp2k", "img1.bmp"), ("jp2k", "img2.bmp"), ("jp2k", "img3.bmp")]
    assert {r.distortion for r in records} == set(live.FOLDERS)
    assert {r.content for r in records} == {"bikes.bmp", "house.bmp"}
    assert all(Path(r.reference).name == r.content for r in records)
    # Entry i of dmos.mat scored 10 + 5 i: records keep the file order.
    kept = [i for i in range(len(LIVE_ENTRIES)) if i != LIVE_REFERENCE_COPY]
    assert [r.score for r in records] == [10.0 + 5 * i for i in kept]


def test_live_prefers_realigned_dmos(replica):
    root = replica("live", realigned=True)
    assert [r.score for r in live.load(root)][:2] == [10.5, 15.5]
    assert [r.score for r in live.load(root, realigned=False)][:2] == [10.0, 15.0]


def test_csiq(replica):
    scale = ScoreScale(0.0, 1.0, higher_is_better=False)
    records = _load(replica, "csiq", scale, len(CSIQ_ROWS))
    assert [Path(r.path).name for r in records] == [row[3] for row in CSIQ_ROWS]
    assert [r.distortion for r in records] == [CSIQ_FOLDERS[row[1]] for row in CSIQ_ROWS]
    assert [r.content for r in records] == [row[0] for row in CSIQ_ROWS]
    assert Path(records[0].reference).name == "1600.png"
    assert [r.score for r in records] == pytest.approx([0.1 * (i + 1) for i in range(6)])


def test_csiq_needs_openpyxl(replica, monkeypatch):
    root = replica("csiq")
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # `import openpyxl` fails
    with pytest.raises(DatasetError, match="pip install openpyxl"):
        get_database("csiq").load(root)


@pytest.mark.parametrize("name, files, n_types", [
    ("tid2013", TID2013_FILES, 24), ("tid2008", TID2008_FILES, 17)])
def test_tid(replica, name, files, n_types):
    records = _load(replica, name, ScoreScale(0.0, 9.0, higher_is_better=True), len(files))
    assert [Path(r.path).name for r in records] == [on_disk for _, on_disk, _ in files]
    assert [r.score for r in records] == pytest.approx([mos for _, _, mos in files])
    assert {r.content for r in records} == {"I01", "I25"}
    assert {Path(r.reference).name for r in records} == {"I01.BMP", "i25.bmp"}
    if name == "tid2013":
        assert [r.distortion for r in records] == [
            "additive Gaussian noise", "Gaussian blur", "JPEG compression",
            "sparse sampling and reconstruction"]
    else:
        assert records[1].distortion == "contrast change"


def test_tid2008_refuses_tid2013_types(replica):
    root = replica("tid2013")
    expected = r"tid2008: .*line 4: distortion type 24 is not one of 1..17"
    with pytest.raises(DatasetError, match=expected):
        get_database("tid2008").load(root)


def test_kadid10k(replica):
    scale = ScoreScale(1.0, 5.0, higher_is_better=True)
    records = _load(replica, "kadid10k", scale, len(KADID_ROWS))
    assert [r.content for r in records] == ["I01", "I01", "I02", "I02"]
    assert [r.distortion for r in records] == ["gaussian blur", "jpeg", "contrast change", "jitter"]
    assert [r.score for r in records] == [4.6, 3.1, 1.4, 3.9]


@pytest.mark.parametrize("with_sets", [False, True], ids=["scores", "sets"])
def test_koniq10k(replica, with_sets):
    database = get_database("koniq10k")
    assert database.authentic
    assert database.scale == ScoreScale(1.0, 5.0, higher_is_better=True)
    records = database.load(replica("koniq10k", with_sets=with_sets))
    assert [r.content for r in records] == KONIQ_IMAGES
    _assert_files_exist(records)
    assert [r.score for r in records] == pytest.approx([3.4, 3.5, 3.6])
    assert all(r.reference is None and r.distortion is None for r in records)
    assert [r.split for r in records] == (KONIQ_SETS if with_sets else [None] * 3)


def test_koniq10k_small_images(replica):
    records = get_database("koniq10k").load(replica("koniq10k", folder="512x384"))
    assert Path(records[0].path).parent.name == "512x384"


def test_clive(replica):
    database = get_database("clive")
    assert database.authentic
    assert database.scale == ScoreScale(0.0, 100.0, higher_is_better=True)
    root = replica("clive")
    records = database.load(root)
    assert [Path(r.path).name for r in records] == CLIVE_IMAGES  # found despite the case
    _assert_files_exist(records)
    assert [r.content for r in records] == [n.lower() for n in CLIVE_IMAGES]
    everything = database.load(root, include_training_images=True)
    assert len(everything) == len(CLIVE_TRAINING) + len(CLIVE_IMAGES)
    assert Path(everything[0].path).parent.name == "trainingImages"
    assert everything[0].score == 20.0 and everything[-1].score == 80.0


def test_csv(tmp_path):
    for name in ("ref.png", "a.png", "b.png"):
        _image(tmp_path / name)
    path = tmp_path / "scores.csv"
    path.write_text("image,dmos,reference,distortion\na.png,3.5,ref.png,blur\nb.png,1.0,,\n")
    records = get_database("csv").load(path)
    assert [r.reference for r in records] == [str(tmp_path / "ref.png"), None]
    assert [r.distortion for r in records] == ["blur", None]
    assert get_database("csv").scale == ScoreScale()
    scale = ScoreScale(0.0, 5.0, higher_is_better=False)
    assert csv_file.database(scale).scale == scale


def test_every_database_has_a_replica():
    assert set(DATABASES) == set(BUILDERS) | {"csv"}


# --- Errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, missing", [
    ("live", "refnames_all.mat"),
    ("live", "gblur/img2.bmp"),
    ("live", "wn/info.txt"),
    ("csiq", "csiq.DMOS.xlsx"),
    ("csiq", "dst_imgs/awgn/1600.AWGN.1.png"),
    ("tid2013", "mos_with_names.txt"),
    ("tid2013", "reference_images/i25.bmp"),
    ("kadid10k", "images/I02.png"),
    ("koniq10k", "koniq10k_scores_and_distributions.csv"),
    ("clive", "Data/AllMOS_release.mat"),
    ("clive", "Images/1004.jpg"),
])
def test_missing_file_is_named(replica, name, missing):
    root = replica(name)
    (root / missing).unlink()
    with pytest.raises(DatasetError) as info:
        get_database(name).load(root)
    message = str(info.value)
    assert message.startswith(f"{name}: missing file ")
    assert str(root / missing).lower() in message.lower()  # names are matched case-blind


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match=f"tid2013: missing folder {tmp_path / 'nope'}"):
        get_database("tid2013").load(tmp_path / "nope")


def test_score_files_disagree(replica):
    root = replica("live")
    sio.savemat(root / "refnames_all.mat", {"refnames_all": _cell(["bikes.bmp"] * 3)})
    with pytest.raises(DatasetError, match="live: the score files disagree.*refnames_all 3"):
        get_database("live").load(root)


def test_unknown_database_hint():
    expected = r"unknown database 'tid2031'\. Did you mean 'tid2013'\?"
    with pytest.raises(DatasetError, match=expected):
        get_database("tid2031")
    assert get_database("TID2013") is DATABASES["tid2013"]


# --- diqa evaluate --database --------------------------------------------------------------


def _values(out):
    values = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("SRCC", "PLCC", "KRCC", "RMSE", "N"):
            values[parts[0]] = float(parts[1])
    return values


def test_evaluate_database(capsys, replica, tiny_quality_model_path):
    root = replica("tid2013")
    status, out, err = run_cli(capsys, "evaluate", "--model", tiny_quality_model_path,
                               "--database", "tid2013", "--root", root)
    assert status == 0, err
    assert error_lines(err) == []
    values = _values(out)
    assert values["N"] == len(TID2013_FILES)
    assert -1.0 <= values["SRCC"] <= 1.0
    assert "tid2013: 4 images, scores 0..9, higher = better" in out
    assert "negated" not in out


def test_evaluate_dmos_database_negates(capsys, replica, tiny_quality_model_path):
    root = replica("live")
    status, out, err = run_cli(capsys, "evaluate", "--model", tiny_quality_model_path,
                               "--database", "live", "--root", root)
    assert status == 0, err
    assert _values(out)["N"] == len(LIVE_ENTRIES) - 1
    assert "predictions negated" in out


def test_evaluate_database_errors(capsys, tmp_path, tiny_quality_model_path):
    model = tiny_quality_model_path
    status, _, err = run_cli(capsys, "evaluate", "--model", model,
                             "--database", "tid2031", "--root", tmp_path)
    assert status == 1
    assert_no_traceback(err)
    assert error_lines(err) == [
        "diqa: error: unknown database 'tid2031'. Did you mean 'tid2013'? "
        "Known: live, csiq, tid2013, tid2008, kadid10k, koniq10k, clive, csv"]
    status, _, err = run_cli(capsys, "evaluate", "--model", model,
                             "--database", "clive", "--root", tmp_path)
    assert status == 1
    assert error_lines(err) == [f"diqa: error: clive: missing folder {tmp_path / 'Data'}"]


@pytest.mark.parametrize("argv", [
    ["--csv", "a.csv", "--database", "tid2013", "--root", "x"],
    ["--database", "tid2013"],
    ["--csv", "a.csv", "--root", "x"],
], ids=["csv-and-database", "no-root", "root-without-database"])
def test_evaluate_usage_errors(capsys, argv):
    with pytest.raises(SystemExit) as info:
        cli.main(["evaluate", "--model", "m.keras", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: diqa evaluate" in err
    assert_no_traceback(err)
