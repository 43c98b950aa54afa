"""Data: finding and reading images, score CSVs, splits, the stage-1 and stage-2
pipelines, the synthetic distortions, and size-grouped scoring."""

import imageio.v3 as iio
import numpy as np
import pytest
import tensorflow as tf

from diqa_tf.config import PreprocessingConfig
from diqa_tf.data import distortions, files, stage1, stage2
from diqa_tf.data.score_csv import read_score_csv
from diqa_tf.errors import DatasetError, InvalidImageError
from diqa_tf.evaluation.splits import content_split

CONFIG = PreprocessingConfig()


# --- find_images / read_image -------------------------------------------------------


def test_find_images_files_folders_globs(image_folder, tmp_path):
    nested = tmp_path / "tree" / "deeper"
    nested.mkdir(parents=True)
    (nested / "x.PNG").write_bytes((image_folder / "a.png").read_bytes())
    (nested / "notes.txt").write_text("not an image")
    empty = tmp_path / "empty_dir"
    empty.mkdir()

    inputs = [
        image_folder / "e.png",  # a file
        tmp_path / "tree",  # a folder: recursive, images only
        str(image_folder / "*.jp*g"),  # a glob
        tmp_path / "missing.png",
        empty,
        str(tmp_path / "*.bmp"),
    ]
    paths, problems = files.find_images(inputs)
    assert paths == [
        str(image_folder / "e.png"),
        str(nested / "x.PNG"),
        str(image_folder / "b.jpg"),
        str(image_folder / "d.jpeg"),
        str(image_folder / "f.jpg"),
    ]
    assert problems == [
        (str(tmp_path / "missing.png"), "no such file or folder"),
        (str(empty), "folder holds no image (PNG, JPEG, BMP, GIF, WebP, TIFF, HEIC, AVIF)"),
        (str(tmp_path / "*.bmp"), "pattern matches no file"),
    ]


def test_find_images_folder_sorted(image_folder):
    paths, problems = files.find_images([image_folder])
    assert problems == []
    assert paths == sorted(paths) and len(paths) == 6


def test_read_image(image_folder):
    image = files.read_image(image_folder / "a.png")
    assert image.shape == (40, 56, 3) and image.dtype == tf.float32
    values = image.numpy()
    assert values.min() >= 0 and values.max() <= 255 and values.max() > 1


def test_read_image_grey_png(tmp_path, textured_image):
    path = tmp_path / "grey.png"
    iio.imwrite(path, textured_image(20, 24)[..., 0], extension=".png")
    image = files.read_image(path).numpy()
    assert image.shape == (20, 24, 3)
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


@pytest.mark.parametrize("case", ["missing", "empty", "text", "small", "folder"])
def test_read_image_errors(tmp_path, textured_image, case):
    path = tmp_path / "bad.png"
    keyword = {
        "missing": "no such file",
        "empty": "empty file",
        "text": "not a readable",
        "small": "8x12",
        "folder": "folder",
    }[case]
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("hello, not a PNG")
    elif case == "small":
        iio.imwrite(path, textured_image(12, 8), extension=".png")  # 8 wide, 12 high
    elif case == "folder":
        path.mkdir()
    with pytest.raises(InvalidImageError) as info:
        files.read_image(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    assert keyword in info.value.reason


def test_read_image_min_size(tmp_path, textured_image):
    path = tmp_path / "img.png"
    iio.imwrite(path, textured_image(20, 30), extension=".png")
    assert files.read_image(path, min_size=20).shape == (20, 30, 3)
    with pytest.raises(InvalidImageError, match="at least 21"):
        files.read_image(path, min_size=21)


# --- read_score_csv -----------------------------------------------------------------


@pytest.fixture
def csv_folder(tmp_path, textured_image):
    """tmp_path with imgs/i0.png .. imgs/i3.png (20x20)."""
    (tmp_path / "imgs").mkdir()
    for i in range(4):
        iio.imwrite(tmp_path / "imgs" / f"i{i}.png", textured_image(20, 20, seed=i),
                    extension=".png")
    return tmp_path


def _write_csv(folder, *lines, name="scores.csv"):
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_score_csv_relative_paths(csv_folder):
    path = _write_csv(
        csv_folder,
        "image,mos,content",
        "imgs/i0.png,10.5,scene_a",
        "imgs/i1.png,20,scene_a",
        " imgs/i2.png , 30 ,",
    )
    records = read_score_csv(path)
    assert [r.path for r in records] == [
        str(csv_folder / "imgs" / f"i{i}.png") for i in range(3)
    ]
    assert [r.score for r in records] == [10.5, 20.0, 30.0]
    # Without a content, each image is its own content.
    assert [r.content for r in records] == ["scene_a", "scene_a", "imgs/i2.png"]


def test_read_score_csv_dmos_and_bom(csv_folder):
    path = csv_folder / "bom.csv"
    path.write_text("\ufeffimage,dmos\nimgs/i0.png,1\nimgs/i1.png,2\n", encoding="utf-8")
    assert [r.score for r in read_score_csv(path)] == [1.0, 2.0]


def test_exclude_training_images(csv_folder):
    path = _write_csv(
        csv_folder,
        "image,mos,is_training_image",
        "imgs/i0.png,10,1",
        "imgs/i1.png,20,0",
        "imgs/i2.png,30,",
        "imgs/i3.png,40,true",
    )
    assert len(read_score_csv(path)) == 4
    kept = read_score_csv(path, exclude_training_images=True)
    assert [r.score for r in kept] == [20.0, 30.0]


@pytest.mark.parametrize(
    "lines, where, keyword",
    [
        (["image,quality", "imgs/i0.png,1"], None, "needs the columns"),
        ([""], None, "no header"),
        (["image,mos", "imgs/i0.png,1", "imgs/i1.png,abc"], "line 3", "not a number"),
        (["image,mos", "imgs/i0.png,1", "imgs/i1.png,"], "line 3", "not a number"),
        (["image,mos", "imgs/i0.png,nan"], "line 2", "is nan"),
        (["image,mos", "imgs/i0.png,inf"], "line 2", "is inf"),
        (["image,mos", "imgs/i0.png,1", "imgs/i1.png,2", "imgs/i0.png,3"], "line 4",
         "duplicate image 'imgs/i0.png' (first on line 2)"),
        (["image,mos", "imgs/i0.png,1", "imgs/gone.png,2"], "line 3", "image not found"),
        (["image,mos", ",1"], "line 2", "empty `image`"),
        (["image,mos"], None, "no images listed"),
    ],
    ids=["no-mos", "empty-file", "not-number", "blank-score", "nan", "inf", "duplicate",
         "not-found", "empty-image", "no-rows"],
)
def test_read_score_csv_errors(csv_folder, lines, where, keyword):
    path = _write_csv(csv_folder, *lines)
    with pytest.raises(DatasetError) as info:
        read_score_csv(path)
    message = str(info.value)
    assert message.startswith(str(path))
    if where:
        assert f"{path}, {where}:" in message
    assert keyword in message


def test_read_score_csv_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        read_score_csv(tmp_path / "none.csv")


def test_read_score_csv_not_text(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x81\x82")
    with pytest.raises(DatasetError, match="cannot be read"):
        read_score_csv(path)


# --- content_split ------------------------------------------------------------------


def test_content_split():
    contents = [f"scene{i // 3}" for i in range(60)]  # 20 contents, 3 items each
    train, holdout = content_split(contents, 0.25, seed=3)
    assert sorted(train + holdout) == list(range(60))
    assert train == sorted(train) and holdout == sorted(holdout)
    assert {contents[i] for i in train}.isdisjoint({contents[i] for i in holdout})
    assert len({contents[i] for i in holdout}) == 5  # round(0.25 * 20)
    assert content_split(contents, 0.25, seed=3) == (train, holdout)
    others = [content_split(contents, 0.25, seed=s)[1] for s in range(4, 8)]
    assert any(o != holdout for o in others)


@pytest.mark.parametrize("fraction, expected", [(0.0, 0), (1.0, 7), (0.5, 4)])
def test_content_split_fractions(fraction, expected):
    contents = list("abcdefg")
    train, holdout = content_split(contents, fraction, seed=0)
    assert len(holdout) == expected and len(train) == 7 - expected


# --- stage-1 pairs ------------------------------------------------------------------


def _take(dataset, n):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in dataset.take(n)]


@pytest.fixture(scope="module")
def stage1_references():
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:80, 0:96]
    smooth = 128 + 50 * np.sin(x / 4.0)[..., None] * np.ones((1, 1, 3))
    return [
        np.clip(smooth + rng.normal(0, 25, (80, 96, 3)), 0, 255).astype(np.uint8),
        rng.integers(0, 256, (80, 96, 3), dtype=np.uint8),
    ]


def _pairs(references, seed, n, **kwargs):
    kwargs = {"crop_size": 32, "batch_size": 3, **kwargs}
    refs = stage1.reference_dataset(references)
    return _take(stage1.pair_dataset(refs, CONFIG, seed=seed, **kwargs), n)


def test_pair_dataset_shapes_values_and_determinism(stage1_references):
    # Each pipeline takes seconds to build (13 distortions traced): two only.
    first, again = _pairs(stage1_references, 7, 2), _pairs(stage1_references, 7, 2)
    assert len(first) == 2
    for inputs, targets in first:
        assert set(inputs) == {"image"} and set(targets) == {"error_map", "reliability"}
        assert inputs["image"].shape == (3, 32, 32, 1)
        assert targets["error_map"].shape == (3, 8, 8, 1)
        assert targets["reliability"].shape == (3, 8, 8, 1)
        for value in (inputs["image"], *targets.values()):
            assert value.dtype == np.float32 and np.all(np.isfinite(value))
        assert np.all(targets["error_map"] >= 0)
        # r = 2 sigmoid(|I_hat|) - 1 is < 1 in exact arithmetic; float32 rounds it
        # to exactly 1.0 for |I_hat| > ~17, so 1.0 itself is allowed.
        assert np.all(targets["reliability"] >= 0) and np.all(targets["reliability"] <= 1)
    assert not np.array_equal(first[0][0]["image"], first[1][0]["image"])
    for a, b in zip(first, again):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize("crop_size", [30, 33, 34])
def test_pair_dataset_crop_not_multiple_of_stride(stage1_references, crop_size):
    refs = stage1.reference_dataset(stage1_references)
    with pytest.raises(ValueError, match="multiple of 4"):
        stage1.pair_dataset(refs, CONFIG, crop_size=crop_size)


def test_make_pair_flatness(stage1_references):
    """The filter's quantity: the reference crop's mean reliability (~0 when flat)."""
    seed = tf.constant([0, 1], tf.int64)
    flat = tf.constant(np.full((80, 96, 3), 120, np.float32))
    inputs, targets, flatness = stage1.crop_example(*stage1.make_pair(flat, seed, 32), 32, CONFIG)
    assert inputs["image"].shape == (32, 32, 1)
    assert targets["error_map"].shape == (8, 8, 1)
    assert float(flatness) < 1e-3  # ~0: float rounding in the pyramid
    textured = tf.constant(stage1_references[1].astype(np.float32))
    pair = stage1.make_pair(textured, seed, 32)
    assert float(stage1.crop_example(*pair, 32, CONFIG)[2]) > 0.5


def test_crop_example_batched_equals_one_at_a_time(stage1_references):
    """The pipeline computes maps a batch at a time: each crop's maps are its own."""
    textured = tf.constant(stage1_references[1].astype(np.float32))
    pairs = [stage1.make_pair(textured, tf.constant([0, i], tf.int64), 32) for i in range(3)]
    batched = stage1.crop_example(
        tf.stack([r for r, _ in pairs]), tf.stack([d for _, d in pairs]), 32, CONFIG
    )
    for i, pair in enumerate(pairs):
        single = stage1.crop_example(*pair, 32, CONFIG)
        for got, want in zip(tf.nest.flatten(batched), tf.nest.flatten(single)):
            np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-5)


def test_pair_dataset_echo_uses_each_pair_echo_times(stage1_references):
    """Data echoing: a one-pass dataset gives every pair exactly `echo` times, shuffled
    apart (not back to back), and the same batches for the same seed."""
    references = [stage1_references[1]] * 8
    fresh = _pairs(references, 3, 10, batch_size=1, repeat=False, min_crop_reliability=0.0)
    echoed = _pairs(references, 3, 30, batch_size=1, repeat=False, echo=3,
                    min_crop_reliability=0.0)
    again = _pairs(references, 3, 30, batch_size=1, repeat=False, echo=3,
                   min_crop_reliability=0.0)
    assert len(fresh) == 8 and len(echoed) == 24
    images = [inputs["image"].tobytes() for inputs, _ in echoed]
    assert sorted(images) == sorted(3 * [inputs["image"].tobytes() for inputs, _ in fresh])
    assert any(a != b for a, b in zip(images[::3], images[1::3]))
    for a, b in zip(echoed, again):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)
    with pytest.raises(ValueError, match="`echo` must be a whole number >= 1"):
        _pairs(references, 3, 1, echo=0)


def test_pair_dataset_drops_flat_references(stage1_references):
    flat = [np.full((80, 96, 3), value, np.uint8) for value in (0, 120, 255)]
    references = [flat[0], stage1_references[1], flat[1], flat[2]]
    # One pass, one crop per reference: unfiltered all 4 come through, filtered
    # only the textured reference's (the same crop: seeds are drawn before the filter).
    everything = _pairs(references, 2, 10, batch_size=1, repeat=False, min_crop_reliability=0.0)
    kept = _pairs(references, 2, 10, batch_size=1, repeat=False, min_crop_reliability=0.2)
    assert len(everything) == 4
    assert len(kept) == 1
    matches = [np.array_equal(kept[0][0]["image"], e[0]["image"]) for e in everything]
    assert sum(matches) == 1
    # Random uniform noise keeps |I_hat| large whatever the distortion.
    assert kept[0][1]["reliability"].mean() > 0.2


# --- distortions --------------------------------------------------------------------


def _texture(size=64, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    base = 128 + 50 * np.sin(x / 2.5) * np.cos(y / 3.5) + 40 * np.sin((x + y) / 9.0)
    image = base[..., None] + rng.normal(0, 12, (size, size, 3))
    image[..., 1] *= 0.8
    return np.clip(np.round(image), 0, 255).astype(np.float32)


def _distort(image, kind, level, seed=(1, 2)):
    index = distortions.ALL_KINDS.index(kind)
    return distortions.distort(tf.constant(image), index, level, tf.constant(seed)).numpy()


@pytest.mark.parametrize("kind", distortions.ALL_KINDS)
def test_distortions_range_and_shape(kind):
    image = _texture(64)[:32, :48]
    for level in range(distortions.NUM_LEVELS):
        out = _distort(image, kind, level)
        assert out.shape == image.shape and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 255, (kind, level)
        np.testing.assert_array_equal(out, np.round(out))


@pytest.mark.parametrize("kind", ["jpeg", "gaussian_blur", "white_noise"])
def test_distortions_grow_with_level(kind):
    image = _texture(64)
    rmse = [
        float(np.sqrt(np.mean((_distort(image, kind, level) - image) ** 2)))
        for level in range(distortions.NUM_LEVELS)
    ]
    assert rmse[0] > 0
    assert all(a < b for a, b in zip(rmse, rmse[1:])), (kind, rmse)


@pytest.mark.parametrize("kind", ["white_noise", "mixture", "contrast", "chroma_noise"])
def test_distortions_same_seed_same_output(kind):
    image = _texture(32)
    a = _distort(image, kind, 2, seed=(4, 5))
    b = _distort(image, kind, 2, seed=(4, 5))
    np.testing.assert_array_equal(a, b)


def test_distortions_seed_matters():
    image = _texture(32)
    a = _distort(image, "white_noise", 2, seed=(4, 5))
    c = _distort(image, "white_noise", 2, seed=(4, 6))
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("step", [(0, 1), (1, 0), (1, 1), (1, -1)])
def test_line_filter_is_a_2d_correlation_along_its_direction(step):
    """The shift-and-add blur equals correlating each channel with the line kernel
    (symmetric borders, scipy's "reflect")."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (17, 23, 3)).astype(np.float32)
    taps = rng.random(7).astype(np.float32)
    kernel = np.zeros((7, 7), np.float32)
    for i, t in enumerate(taps):
        kernel[3 + (i - 3) * step[0], 3 + (i - 3) * step[1]] = t
    got = distortions._line_filter(tf.constant(image), list(taps), step).numpy()
    for c in range(3):
        want = ndimage.correlate(image[..., c], kernel, mode="reflect")
        np.testing.assert_allclose(got[..., c], want, atol=1e-3)


# --- stage-2 pipeline -----------------------------------------------------------------


@pytest.fixture(scope="module")
def stage2_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stage2")
    paths, scores = [], []
    for i, (h, w) in enumerate([(32, 48), (40, 40), (32, 48), (40, 40), (32, 48)]):
        path = folder / f"s{i}.png"
        iio.imwrite(path, _texture(64, seed=i)[:h, :w].astype(np.uint8), extension=".png")
        paths.append(str(path))
        scores.append(10.0 * (i + 1))
    return paths, scores


def test_stage2_training_dataset_crops(stage2_files):
    paths, scores = stage2_files
    ds = stage2.training_dataset(paths, scores, CONFIG, batch_size=3, crop_size=24, seed=0)
    for inputs, batch_scores in _take(ds, 3):
        assert inputs["image"].shape == (3, 24, 24, 1)
        assert inputs["features"].shape == (3, 2)
        assert batch_scores.shape == (3,)
        assert set(batch_scores.tolist()) <= set(scores)
        assert np.all(np.isfinite(inputs["image"])) and np.all(np.isfinite(inputs["features"]))


def test_stage2_training_dataset_echo(stage2_files):
    """With echo 3, the crops are the fresh stream's crops, each 3 times, shuffled."""
    paths, scores = stage2_files

    def crops(echo, n):
        ds = stage2.training_dataset(
            paths, scores, CONFIG, batch_size=1, crop_size=24, seed=0, echo=echo
        )
        return [inputs["image"].tobytes() for inputs, _ in _take(ds, n)]

    fresh, echoed = crops(1, 64), crops(3, 90)
    # 90 outputs are 3 copies each of the first 30 crops (windows of 32 // 3 crops);
    # tiny images: two seeds can give the same crop, hence the counts in `fresh`.
    assert all(echoed.count(c) == 3 * fresh[:30].count(c) for c in set(echoed))
    assert len(set(echoed)) <= 30 < len(set(fresh))
    assert any(a != b for a, b in zip(echoed, echoed[1:]))
    with pytest.raises(ValueError, match="`echo` needs training crops"):
        stage2.training_dataset(paths, scores, CONFIG, batch_size=1, crop_size=0, seed=0, echo=2)


def test_ladder_batches_are_one_crop_at_two_neighbouring_levels(textured_image):
    """Each element: the same crop distorted one level apart by JPEG, blur or noise, with
    features estimated as the ranking pair's; reproducible from the seed."""
    config = PreprocessingConfig()
    photos = [("a", textured_image(96, 96, seed=1)), ("b", textured_image(96, 96, seed=2))]
    ladder = stage2.ladder_batches(photos, config, batch_size=4, crop_size=32, seed=3)
    batch = next(iter(ladder))
    assert sorted(batch) == ["distorted_features", "distorted_image", "features", "image"]
    assert batch["image"].shape == batch["distorted_image"].shape == (4, 32, 32, 1)
    assert not np.allclose(batch["image"], batch["distorted_image"])
    again = next(iter(stage2.ladder_batches(photos, config, 4, 32, 3)))
    np.testing.assert_array_equal(batch["image"], again["image"])
    np.testing.assert_array_equal(batch["distorted_features"], again["distorted_features"])


def test_training_pipelines_run_without_autotuning(stage1_references, stage2_files):
    """Autotuning slowed training on CPUs (see stage1.pair_batches)."""
    pairs = stage1.pair_dataset(stage1.reference_dataset(stage1_references), CONFIG, crop_size=32)
    paths, scores = stage2_files
    crops = stage2.training_dataset(paths, scores, CONFIG, batch_size=1, crop_size=24, seed=0)
    images = stage2.training_dataset(paths, scores, CONFIG, batch_size=2, crop_size=0, seed=0)
    for ds in (pairs, crops, images):
        assert ds.options().autotune.enabled is False


def test_stage2_training_dataset_whole_images(stage2_files):
    paths, scores = stage2_files
    ds = stage2.training_dataset(paths, scores, CONFIG, batch_size=2, crop_size=0, seed=0)
    sizes = set()
    size_of = {10.0: (32, 48), 30.0: (32, 48), 50.0: (32, 48), 20.0: (40, 40), 40.0: (40, 40)}
    for inputs, batch_scores in _take(ds, 8):
        shape = inputs["image"].shape
        assert shape[0] == len(batch_scores) and shape[-1] == 1
        assert inputs["features"].shape == (shape[0], 2)
        # One size per batch, and each image is the size it was written at.
        for score in batch_scores:
            assert size_of[float(score)] == shape[1:3]
        sizes.add(shape[1:3])
    assert sizes == {(32, 48), (40, 40)}


def test_stage2_crop_larger_than_image(stage2_files):
    paths, scores = stage2_files
    ds = stage2.training_dataset(paths, scores, CONFIG, batch_size=2, crop_size=64, seed=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least 64x64"):
        _take(ds, 1)


# --- Scorer ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quality_model(tiny_quality_model_path):
    from diqa_tf.resources import load_model
    from diqa_tf.models import QualityModel

    return load_model(tiny_quality_model_path, expected=QualityModel)


def test_scorer_mixed_sizes_equals_alone(quality_model):
    from diqa_tf.inference import Scorer

    images = [
        _texture(64, seed=i)[: 32 + 8 * (i % 2), : 48 - 8 * (i % 2)] for i in range(5)
    ]
    assert {im.shape for im in images} == {(32, 48, 3), (40, 40, 3)}
    scorer = Scorer(quality_model, batch_size=2)
    together = scorer.score_arrays(images)
    assert together.shape == (5,) and np.all(np.isfinite(together))
    alone = np.array([scorer.score_arrays([im])[0] for im in images])
    # Equal up to float32 rounding (oneDNN may pick another kernel per batch size):
    # ~1e-6 relative, i.e. 2e-5 on this random model's scores of about -30.
    np.testing.assert_allclose(together, alone, atol=1e-5, rtol=2e-6)


def test_scorer_rejects_batch_size_0(quality_model):
    from diqa_tf.inference import Scorer

    with pytest.raises(ValueError, match="at least 1"):
        Scorer(quality_model, batch_size=0)


def _texture_files(folder, size, count=3):
    """Paths of `count` textured size x size PNGs written to `folder`."""
    paths = []
    for i in range(count):
        path = folder / f"t{i}.png"
        iio.imwrite(path, _texture(size, seed=i).astype(np.uint8), extension=".png")
        paths.append(str(path))
    return paths


def test_stage2_ranking_pairs(tmp_path):
    """Ranking examples: a crop, its distorted copy, and both feature vectors."""
    paths = _texture_files(tmp_path, 64)
    ds = stage2.training_dataset(
        paths, [10.0, 20.0, 30.0], CONFIG, batch_size=2, crop_size=16, seed=0, ranking=True
    )
    for inputs, _ in _take(ds, 3):
        assert inputs["image"].shape == inputs["distorted_image"].shape == (2, 16, 16, 1)
        assert inputs["features"].shape == inputs["distorted_features"].shape == (2, 2)
        assert np.all(np.isfinite(inputs["distorted_image"]))
        assert not np.allclose(inputs["image"], inputs["distorted_image"])
    with pytest.raises(ValueError, match="needs training crops"):
        stage2.training_dataset(paths, [1.0] * 3, CONFIG, 2, crop_size=0, seed=0, ranking=True)
    too_big = stage2.training_dataset(paths, [1.0] * 3, CONFIG, 2, crop_size=40, seed=0,
                                      ranking=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least 72x72 .* crop_size 40"):
        next(iter(too_big))


def test_stage2_batches_carry_pristine_crops_and_distorted_copies(tmp_path):
    """With `references`, each batch also holds that many pristine ranking crops."""
    paths = _texture_files(tmp_path, 40)
    pristine = [(f"ref{i}", _texture(48 + 8 * i, seed=10 + i)) for i in range(2)]
    ds = stage2.training_dataset(paths, [10.0, 20.0, 30.0], CONFIG, batch_size=2, crop_size=8,
                                 seed=0, references=pristine, reference_batch_size=3,
                                 reference_crop_size=12)
    batches = _take(ds, 2)
    for inputs, scores in batches:
        assert scores.shape == (2,) and inputs["image"].shape == (2, 8, 8, 1)
        for key in ("image", "distorted_image"):
            assert inputs[f"reference_{key}"].shape == (3, 12, 12, 1)
        for key in ("features", "distorted_features"):
            assert inputs[f"reference_{key}"].shape == (3, 2)
        assert np.all(np.isfinite(inputs["reference_distorted_image"]))
        assert not np.allclose(inputs["reference_image"], inputs["reference_distorted_image"])
    assert not np.array_equal(batches[0][0]["reference_image"], batches[1][0]["reference_image"])
    again = _take(stage2.training_dataset(
        paths, [10.0, 20.0, 30.0], CONFIG, batch_size=2, crop_size=8, seed=0,
        references=pristine, reference_batch_size=3, reference_crop_size=12), 2)
    for a, b in zip(batches, again):
        tf.nest.map_structure(np.testing.assert_array_equal, a, b)


def _focus_draws(focus_kinds, focus_fraction, count=40):
    """(kind name, level) of each of `count` ranking distortions, found by replaying
    every single kind and level of `distortions.distort` with the same seed (None for
    a mixture)."""
    crop = tf.constant(_texture(24, seed=3), tf.float32)
    draws = []
    for i in range(count):
        seeds = tf.unstack(tf.random.experimental.stateless_split([7, i], 3))
        out = stage1.random_distortion(crop, *seeds, 1, focus_kinds, focus_fraction).numpy()
        replays = (
            (name, level)
            for index, name in enumerate(distortions.DISTORTIONS)
            for level in range(distortions.NUM_LEVELS)
            if np.array_equal(out, distortions.distort(crop, index, level, seeds[2]).numpy())
        )
        draws.append(next(replays, None))
    return draws


def test_ranking_focus_draws_its_kinds_at_every_level_the_lightest_included():
    draws = _focus_draws(("white_noise", "jpeg"), 1.0)
    assert {name for name, _ in draws} == {"white_noise", "jpeg"}
    assert {level for _, level in draws} == set(range(distortions.NUM_LEVELS))


def test_without_focus_ranking_distortions_skip_the_lightest_level():
    plain = _focus_draws(("jpeg",), 0.0)
    assert {level for _, level in filter(None, plain)} == {1, 2, 3, 4}
    half = _focus_draws(("white_noise",), 0.5, count=60)
    assert 0 < sum(d == ("white_noise", 0) for d in half)


def test_training_pipelines_read_what_predict_reads(tmp_path, textured_image):
    """formats.decode_file (stage-2 and database-pair pipelines): TF decodes its
    formats in the graph, Pillow the others; both as files.read_image gives them."""
    from PIL import Image

    from diqa_tf.data import formats

    rgb = textured_image(20, 24)
    paths = [tmp_path / "a.png", tmp_path / "a.webp", tmp_path / "a.tif", tmp_path / "g16.tif"]
    Image.fromarray(rgb).save(paths[0])
    Image.fromarray(rgb).save(paths[1], lossless=True)
    Image.fromarray(rgb).save(paths[2])
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257 + 3).save(paths[3])
    dataset = tf.data.Dataset.from_tensor_slices([str(p) for p in paths]).map(formats.decode_file)
    for path, image in zip(paths, dataset):
        np.testing.assert_array_equal(image.numpy(), files.read_image(path).numpy())
    for image in list(dataset)[:3]:
        np.testing.assert_array_equal(image.numpy(), rgb.astype(np.float32))
    (tmp_path / "cut.tif").write_bytes(paths[2].read_bytes()[:40])
    broken = tf.data.Dataset.from_tensors(str(tmp_path / "cut.tif")).map(formats.decode_file)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not a readable TIFF image"):
        list(broken)


def test_images_beyond_tfs_decoder_go_through_pillow(tmp_path, textured_image, monkeypatch):
    """TF's JPEG decoder refuses 179 megapixels and more (a 200 MP phone photo): such
    files are decoded by Pillow instead. Tried here with the threshold lowered."""
    from PIL import Image

    from diqa_tf.data import formats

    rgb = textured_image(20, 24)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    by_tf = {name: files.read_image(tmp_path / name).numpy() for name in ("a.png", "a.jpg")}
    decoders = []
    original = formats._pillow_array
    monkeypatch.setattr(formats, "_pillow_array", lambda *a: decoders.append(1) or original(*a))
    monkeypatch.setattr(formats, "TF_MAX_PIXELS", 20 * 24 - 1)
    np.testing.assert_array_equal(files.read_image(tmp_path / "a.png").numpy(), by_tf["a.png"])
    # Two JPEG decoders: close, not equal (upsampling of the chroma differs).
    assert np.abs(files.read_image(tmp_path / "a.jpg").numpy() - by_tf["a.jpg"]).mean() < 2
    assert len(decoders) == 2
