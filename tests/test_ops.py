"""The preprocessing ops (DESIGN 1-2) against OpenCV and a float64 numpy reference."""

import io
import os

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from diqa_tf import ops, preprocessing
from diqa_tf.config import PreprocessingConfig
from diqa_tf.data import formats
from diqa_tf.layers import HighPass, Normalize

CONFIG = PreprocessingConfig()
LEVELS = CONFIG.pyramid_levels
STRIDE = CONFIG.output_stride
BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def random_image(rng, h, w, channels=None):
    """float32 0-255 image, [h, w] or [h, w, channels]."""
    shape = (h, w) if channels is None else (h, w, channels)
    return (rng.random(shape) * 255.0).astype(np.float32)


# ---------------------------------------------------------------- numpy reference


def np_error_map(hp_ref, hp_dist, p):
    return np.abs(hp_ref.astype(np.float64) - hp_dist.astype(np.float64)) ** p


def np_reliability(hp_dist, alpha):
    return 2.0 / (1.0 + np.exp(-alpha * np.abs(hp_dist.astype(np.float64)))) - 1.0


def np_pool(x, stride):
    """'SAME' average pooling of [H, W, C] that averages only pixels inside the image.

    TF's 'SAME' convention: output ceil(H / s), total padding (out - 1) * s + s - H,
    of which floor(total / 2) goes before.
    """
    x = x.astype(np.float64)
    h, w = x.shape[:2]
    out_h, out_w = -(-h // stride), -(-w // stride)
    top = ((out_h - 1) * stride + stride - h) // 2
    left = ((out_w - 1) * stride + stride - w) // 2
    y = np.zeros((out_h, out_w) + x.shape[2:])
    for i in range(out_h):
        r0, r1 = max(i * stride - top, 0), min(i * stride - top + stride, h)
        for j in range(out_w):
            c0, c1 = max(j * stride - left, 0), min(j * stride - left + stride, w)
            y[i, j] = x[r0:r1, c0:c1].mean(axis=(0, 1))
    return y


def np_normalize_reliability(r, floor):
    return r / max(r.astype(np.float64).mean(), floor)


def np_features(hp_dist, low, alpha, scale):
    mu_r = np_reliability(hp_dist, alpha).mean()
    return np.array([mu_r, low.astype(np.float64).std() * scale])


def cv2_low_pass(image, levels):
    y = image
    for _ in range(levels):
        y = cv2.pyrDown(y)
    for _ in range(levels):
        y = cv2.pyrUp(y)
    return y


# ---------------------------------------------------------------- pyramid vs OpenCV


@pytest.mark.parametrize("shape", [(16, 32), (24, 20), (17, 33), (15, 9), (5, 7)])
def test_pyr_down_matches_opencv(rng, shape):
    image = random_image(rng, *shape)
    expected = cv2.pyrDown(image)
    got = ops.pyr_down(image[..., None]).numpy()[..., 0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)


@pytest.mark.parametrize("shape", [(16, 32), (24, 20), (9, 17)])
def test_pyr_up_matches_opencv(rng, shape):
    image = random_image(rng, *shape)
    expected = cv2.pyrUp(image)
    got = ops.pyr_up(image[..., None]).numpy()[..., 0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)


@pytest.mark.parametrize("shape", [(32, 48), (20, 36)])
def test_low_pass_matches_opencv(rng, shape):
    image = random_image(rng, *shape)
    expected = cv2_low_pass(image, 2)
    got = ops.low_pass(image[..., None], 2).numpy()[..., 0]
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)
    hp, low = ops.high_pass(image[..., None], 2)
    np.testing.assert_allclose(low.numpy()[..., 0], expected, atol=1e-3, rtol=0)
    np.testing.assert_allclose(hp.numpy()[..., 0], image - expected, atol=1e-3, rtol=0)


def test_pyr_up_impulse_response_is_the_centred_binomial_kernel():
    """pyrUp of an impulse at (m, m) is 4 * outer(k, k), k = [1,4,6,4,1]/16, centred on 2m."""
    x = np.zeros((8, 8, 1), np.float32)
    x[4, 4] = 1.0
    y = ops.pyr_up(x).numpy()[..., 0]
    expected = np.zeros((16, 16))
    expected[6:11, 6:11] = 4.0 * np.outer(BINOMIAL, BINOMIAL)
    np.testing.assert_allclose(y, expected, atol=1e-6)


def test_pyr_down_impulse_response_is_symmetric():
    x = np.zeros((16, 16, 1), np.float32)
    x[8, 8] = 1.0
    y = ops.pyr_down(x).numpy()[..., 0]  # centred on (4, 4)
    expected = np.zeros((8, 8))
    expected[3:6, 3:6] = np.outer(BINOMIAL[::2], BINOMIAL[::2])  # taps 1, 6, 1 / 16
    np.testing.assert_allclose(y, expected, atol=1e-6)


def test_low_pass_impulse_response_is_symmetric_around_the_impulse():
    c = 16  # a multiple of 4: the pyramid grid is centred on it
    x = np.zeros((32, 32, 1), np.float32)
    x[c, c] = 1.0
    y = ops.low_pass(x, 2).numpy()[..., 0]
    window = y[c - 12 : c + 13, c - 12 : c + 13]
    np.testing.assert_allclose(window, window[::-1, :], atol=1e-7)
    np.testing.assert_allclose(window, window[:, ::-1], atol=1e-7)
    np.testing.assert_allclose(window, window.T, atol=1e-7)
    assert np.unravel_index(np.argmax(y), y.shape) == (c, c)
    # DC gain 1: the whole response sums to the impulse.
    np.testing.assert_allclose(y.sum(), 1.0, atol=1e-5)


# ---------------------------------------------------------------- shapes and input kinds


def test_odd_size_shapes(rng):
    image = random_image(rng, 17, 33, 1)
    hp, low = ops.high_pass(image, LEVELS)
    assert hp.shape == (17, 33, 1) and low.shape == (17, 33, 1)
    assert ops.low_pass(image, LEVELS).shape == (17, 33, 1)
    error = ops.pool_to_output(ops.error_map(hp, hp + 1.0, CONFIG.error_exponent), STRIDE)
    reliability = ops.pool_to_output(ops.reliability_map(hp, CONFIG.reliability_alpha), STRIDE)
    assert error.shape == (5, 9, 1)
    assert reliability.shape == (5, 9, 1)
    targets = preprocessing.stage1_targets(image, image + 3.0, CONFIG)
    assert targets["image"].shape == (17, 33, 1)
    for key in ("error_map", "reliability", "reference_reliability"):
        assert targets[key].shape == (5, 9, 1), key


def test_odd_size_low_pass_is_a_smooth_copy(rng):
    """Reflection padding for odd sizes: a constant image stays constant."""
    image = np.full((17, 33, 1), 100.0, np.float32)
    np.testing.assert_allclose(ops.low_pass(image, LEVELS).numpy(), image, atol=1e-4)


def test_batch_and_single_agree(rng):
    images = np.stack([random_image(rng, 20, 28, 1) for _ in range(3)])
    images[1] *= 0.1  # a low-contrast one: per-sample means differ
    hp_b, low_b = ops.high_pass(images, LEVELS)
    feats_b = ops.handcrafted_features(hp_b, low_b, 1.0, CONFIG.sigma_low_scale)
    r_b = ops.pool_to_output(ops.reliability_map(hp_b, 1.0), STRIDE)
    rhat_b = ops.normalize_reliability(r_b, CONFIG.reliability_floor)
    assert feats_b.shape == (3, 2)
    for i, image in enumerate(images):
        hp, low = ops.high_pass(image, LEVELS)
        np.testing.assert_allclose(hp_b[i], hp, atol=1e-5)
        np.testing.assert_allclose(low_b[i], low, atol=1e-5)
        feats = ops.handcrafted_features(hp, low, 1.0, CONFIG.sigma_low_scale)
        assert feats.shape == (2,)
        np.testing.assert_allclose(feats_b[i], feats, rtol=1e-5)
        r = ops.pool_to_output(ops.reliability_map(hp, 1.0), STRIDE)
        np.testing.assert_allclose(r_b[i], r, atol=1e-6)
        np.testing.assert_allclose(
            rhat_b[i], ops.normalize_reliability(r, CONFIG.reliability_floor), rtol=1e-5
        )
        np.testing.assert_allclose(ops.pyr_down(image), ops.pyr_down(images)[i], atol=1e-5)
        np.testing.assert_allclose(ops.pyr_up(image), ops.pyr_up(images)[i], atol=1e-5)


def test_pyramid_filters_each_channel_alone(rng):
    """Several channels (pyrUp's phases are regrouped for depth_to_space) = one at a time."""
    image = random_image(rng, 12, 10, 3)
    for fn in (ops.pyr_down, ops.pyr_up):
        whole = fn(image).numpy()
        for c in range(3):
            np.testing.assert_allclose(whole[..., c : c + 1], fn(image[..., c : c + 1]), rtol=1e-6)


def test_ops_accept_numpy(rng):
    image = random_image(rng, 16, 16, 1)
    for fn in (ops.pyr_down, ops.pyr_up, lambda x: ops.low_pass(x, 2)):
        assert isinstance(fn(image), tf.Tensor)
    hp, low = ops.high_pass(image, 2)
    assert isinstance(ops.error_map(image, image * 0.5, 0.2), tf.Tensor)
    assert isinstance(ops.reliability_map(image, 1.0), tf.Tensor)
    assert isinstance(ops.pool_to_output(image, 4), tf.Tensor)
    assert isinstance(ops.normalize_reliability(image / 255.0, 0.05), tf.Tensor)
    assert isinstance(ops.handcrafted_features(hp.numpy(), low.numpy(), 1.0, 0.1), tf.Tensor)
    assert ops.pyr_down(image.astype(np.float64)).dtype == tf.float32


def test_ops_work_in_tf_data(rng):
    images = np.stack([random_image(rng, 20, 24, 3) for _ in range(2)])
    dataset = tf.data.Dataset.from_tensor_slices(images).map(
        lambda x: preprocessing.normalize(x, CONFIG)
    )
    for image, element in zip(images, dataset):
        eager = preprocessing.normalize(image, CONFIG)
        assert element["image"].shape == (20, 24, 1)
        np.testing.assert_allclose(element["image"], eager["image"], atol=1e-4)
        np.testing.assert_allclose(element["features"], eager["features"], rtol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
def test_normalization_runs_without_onednn(channels):
    """TF's own kernels (oneDNN is off by default on CPUs without AVX-512) refuse
    some filters oneDNN takes, such as depthwise ones with unequal strides: an
    Intel machine alone would not catch it."""
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from diqa_tf import ops, preprocessing\n"
        "from diqa_tf.config import PreprocessingConfig\n"
        f"x = np.random.default_rng(0).uniform(0, 255, (2, 21, 26, {channels}))\n"
        "y = ops.low_pass(x.astype('float32'), 2)\n"
        "assert y.shape == x.shape, y.shape\n"
        "preprocessing.normalize(x[0, ..., :1].repeat(3, -1), PreprocessingConfig())\n"
    )
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_ops_work_with_unknown_shapes(rng):
    @tf.function(input_signature=[tf.TensorSpec([None, None, 1], tf.float32)])
    def pipeline(image):
        hp, low = ops.high_pass(image, LEVELS)
        r = ops.pool_to_output(ops.reliability_map(hp, 1.0), STRIDE)
        features = ops.handcrafted_features(hp, low, 1.0, CONFIG.sigma_low_scale)
        return hp, r, ops.normalize_reliability(r, CONFIG.reliability_floor), features

    for shape in [(17, 33), (32, 32)]:
        image = random_image(rng, *shape, 1)
        graph = pipeline(tf.constant(image))
        hp, low = ops.high_pass(image, LEVELS)
        r = ops.pool_to_output(ops.reliability_map(hp, 1.0), STRIDE)
        eager = (
            hp,
            r,
            ops.normalize_reliability(r, CONFIG.reliability_floor),
            ops.handcrafted_features(hp, low, 1.0, CONFIG.sigma_low_scale),
        )
        assert graph[1].shape == (-(-shape[0] // 4), -(-shape[1] // 4), 1)
        for g, e in zip(graph, eager):
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- maps vs numpy reference


def test_error_map_matches_reference(rng):
    ref, dist = rng.normal(0, 15, (2, 17, 33, 1)).astype(np.float32)
    got = ops.error_map(ref, dist, 0.2).numpy()
    np.testing.assert_allclose(got, np_error_map(ref, dist, 0.2), rtol=1e-5, atol=1e-6)


def test_reliability_map_matches_reference(rng):
    hp = rng.normal(0, 15, (17, 33, 1)).astype(np.float32)
    hp[0, :5, 0] = [0.0, 1e-3, -0.5, 40.0, -300.0]
    for alpha in (1.0, 0.3):
        got = ops.reliability_map(hp, alpha).numpy()
        np.testing.assert_allclose(got, np_reliability(hp, alpha), rtol=1e-5, atol=1e-6)
    r = ops.reliability_map(hp, 1.0).numpy()
    assert r.min() >= 0.0 and r.max() <= 1.0 and r[0, 0, 0] == 0.0


@pytest.mark.parametrize("shape", [(17, 33), (16, 16), (18, 23)])
def test_pool_to_output_matches_reference(rng, shape):
    x = rng.random(shape + (1,)).astype(np.float32)
    got = ops.pool_to_output(x, 4).numpy()
    np.testing.assert_allclose(got, np_pool(x, 4), rtol=1e-5, atol=1e-6)
    batch = ops.pool_to_output(x[None], 4).numpy()
    np.testing.assert_allclose(batch[0], got, atol=1e-7)


def test_normalize_reliability_matches_reference(rng):
    floor = CONFIG.reliability_floor
    r = rng.random((3, 5, 9, 1)).astype(np.float32)
    r[1] *= 1e-3  # below the floor
    got = ops.normalize_reliability(r, floor).numpy()
    for i in range(3):
        np.testing.assert_allclose(got[i], np_normalize_reliability(r[i], floor), rtol=1e-5)
    np.testing.assert_allclose(got[0].mean(), 1.0, rtol=1e-5)  # above the floor: mean 1
    single = ops.normalize_reliability(r[2], floor).numpy()
    np.testing.assert_allclose(single, np_normalize_reliability(r[2], floor), rtol=1e-5)


def test_handcrafted_features_match_reference(rng):
    images = rng.random((2, 20, 28, 1)).astype(np.float32) * 255.0
    hp, low = ops.high_pass(images, LEVELS)
    got = ops.handcrafted_features(hp, low, 1.0, CONFIG.sigma_low_scale).numpy()
    for i in range(2):
        expected = np_features(hp[i].numpy(), low[i].numpy(), 1.0, CONFIG.sigma_low_scale)
        np.testing.assert_allclose(got[i], expected, rtol=1e-4)


def test_stage1_targets_match_reference(rng):
    """Independent path: BT.601 luma in numpy, I_low from OpenCV, maps in float64."""
    reference = random_image(rng, 20, 36, 3)
    noise = rng.normal(0, 10, reference.shape)
    distorted = np.clip(reference + noise, 0, 255).astype(np.float32)
    targets = preprocessing.stage1_targets(reference, distorted, CONFIG)

    def np_high_pass(rgb):
        grey = (rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).astype(np.float32)
        return (grey - cv2_low_pass(grey, 2)).astype(np.float64)[..., None]

    hp_r, hp_d = np_high_pass(reference), np_high_pass(distorted)
    np.testing.assert_allclose(targets["image"], hp_d, atol=0.05)
    assert targets["error_map"].shape == (5, 9, 1)
    np.testing.assert_allclose(
        targets["error_map"], np_pool(np_error_map(hp_r, hp_d, 0.2), 4), atol=0.01
    )
    np.testing.assert_allclose(
        targets["reliability"], np_pool(np_reliability(hp_d, 1.0), 4), atol=0.01
    )
    np.testing.assert_allclose(
        targets["reference_reliability"], np_pool(np_reliability(hp_r, 1.0), 4), atol=0.01
    )


def test_odd_size_low_pass_is_opencv_on_the_reflect_padded_image(rng):
    """Documented choice: pad bottom/right by reflect-101 to a multiple of 4, then crop."""
    image = random_image(rng, 17, 33)
    padded = cv2.copyMakeBorder(image, 0, 3, 0, 3, cv2.BORDER_REFLECT_101)
    expected = cv2_low_pass(padded, 2)[:17, :33]
    got = ops.low_pass(image[..., None], 2).numpy()[..., 0]
    np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0)


# ---------------------------------------------------------------- the flat-crop guard


@pytest.mark.parametrize("flat_noise", [0.0, 1e-4])
def test_flat_distorted_crop_gives_a_finite_loss(rng, flat_noise):
    reference = random_image(rng, 32, 32, 1)
    flat = np.full((32, 32, 1), 128.0, np.float32) + flat_noise * rng.standard_normal(
        (32, 32, 1)
    ).astype(np.float32)
    batch_ref = np.stack([reference, reference])
    batch_dist = np.stack([flat, reference + 5.0 * rng.standard_normal((32, 32, 1))])
    targets = preprocessing.stage1_targets(batch_ref, batch_dist.astype(np.float32), CONFIG)
    assert float(tf.reduce_mean(targets["reliability"][0])) < 1e-3  # really flat
    predicted = rng.random((2, 8, 8, 1)).astype(np.float32)
    loss = preprocessing.weighted_error_per_sample(
        predicted, targets["error_map"], targets["reliability"], CONFIG
    ).numpy()
    assert loss.shape == (2,)
    assert np.all(np.isfinite(loss))
    r_hat = ops.normalize_reliability(targets["reliability"], CONFIG.reliability_floor)
    assert np.all(np.isfinite(r_hat)) and float(tf.reduce_max(r_hat)) <= 1.0 / CONFIG.reliability_floor


def test_weighted_error_matches_reference(rng):
    predicted = rng.random((2, 5, 9, 1)).astype(np.float32)
    target = rng.random((2, 5, 9, 1)).astype(np.float32)
    reliability = rng.random((2, 5, 9, 1)).astype(np.float32)
    got = preprocessing.weighted_error_per_sample(predicted, target, reliability, CONFIG)
    for i in range(2):
        r_hat = np_normalize_reliability(reliability[i], CONFIG.reliability_floor)
        expected = np.mean((r_hat * (predicted[i].astype(np.float64) - target[i])) ** 2)
        np.testing.assert_allclose(got[i], expected, rtol=1e-5)


# ---------------------------------------------------------------- decoding


def _png(array):
    ok, encoded = cv2.imencode(".png", array)
    assert ok
    return encoded.tobytes()


def test_decode_8_bit_png(rng):
    bgr = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    image = ops.decode_image(_png(bgr)).numpy()
    assert image.dtype == np.float32 and image.shape == (6, 7, 3)
    np.testing.assert_allclose(image, bgr[..., ::-1].astype(np.float32), atol=1e-3)


def test_decode_16_bit_png_is_on_0_255(rng):
    bgr8 = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    bgr8[0, 0] = 255
    bgr16 = bgr8.astype(np.uint16) * 257  # 255 -> 65535
    contents = _png(bgr16)
    assert contents[24] == 16  # IHDR bit depth: really a 16-bit PNG
    image = ops.decode_image(contents).numpy()
    assert image.shape == (6, 7, 3)
    assert 0.0 <= image.min() and image.max() <= 255.0 + 1e-3
    np.testing.assert_allclose(image, bgr8[..., ::-1].astype(np.float32), atol=1e-2)


@pytest.mark.parametrize("dtype, scale", [(np.uint8, 1), (np.uint16, 257)])
def test_decode_grey_png_is_replicated(rng, dtype, scale):
    grey = rng.integers(0, 256, (5, 8), dtype=np.uint8)
    image = ops.decode_image(_png(grey.astype(dtype) * scale)).numpy()
    assert image.shape == (5, 8, 3)
    for c in range(3):
        np.testing.assert_allclose(image[..., c], grey.astype(np.float32), atol=1e-2)


def test_decode_png_drops_alpha(rng):
    bgra = rng.integers(0, 256, (4, 5, 4), dtype=np.uint8)
    image = ops.decode_image(_png(bgra)).numpy()
    assert image.shape == (4, 5, 3)
    np.testing.assert_allclose(image, bgra[..., 2::-1].astype(np.float32), atol=1e-3)


# ---------------------------------------------------------------- Keras layers


def test_high_pass_layer(rng):
    images = random_image(rng, 18, 22, None)[None, ..., None]
    layer = HighPass(levels=2, name="hp")
    np.testing.assert_allclose(layer(images), ops.high_pass(images, 2)[0], atol=1e-6)
    clone = HighPass.from_config(layer.get_config())
    assert clone.levels == 2 and clone.name == "hp"
    np.testing.assert_allclose(clone(images), layer(images), atol=1e-6)
    generic = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(generic, HighPass)


def test_normalize_layer(rng):
    config = PreprocessingConfig(sigma_low_scale=1.0 / 32.0, reliability_alpha=0.5)
    images = np.stack([random_image(rng, 20, 24, 3) for _ in range(2)])
    layer = Normalize(config, name="norm")
    out = layer(images)
    expected = preprocessing.normalize(images, config)
    assert set(out) == {"image", "features"}
    np.testing.assert_allclose(out["image"], expected["image"], atol=1e-5)
    np.testing.assert_allclose(out["features"], expected["features"], rtol=1e-5)
    clone = Normalize.from_config(layer.get_config())
    assert clone.preprocessing_config == config
    out2 = clone(images)
    np.testing.assert_allclose(out2["image"], out["image"], atol=1e-6)
    np.testing.assert_allclose(out2["features"], out["features"], rtol=1e-6)
    generic = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(generic, Normalize) and generic.preprocessing_config == config


@pytest.mark.parametrize("options", [{"lossless": True}, {"quality": 90}])
def test_decode_webp(rng, options):
    """TF's WebP decoder gives uint8 only: decode_image must not ask it for more."""
    import io

    from PIL import Image

    rgb = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="WEBP", **options)
    image = ops.decode_image(buffer.getvalue()).numpy()
    assert image.dtype == np.float32 and image.shape == (6, 7, 3)
    if options.get("lossless"):
        np.testing.assert_array_equal(image, rgb.astype(np.float32))


# ---------------------------------------------------------------- format signatures


def _encoded(fmt):
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "fmt, name, in_graph",
    [("PNG", "PNG", True), ("JPEG", "JPEG", True), ("GIF", "GIF", True), ("BMP", "BMP", True),
     ("WEBP", "WebP", True), ("TIFF", "TIFF", False)],
)
def test_sniff_and_the_graph_check_agree_on_real_files(fmt, name, in_graph):
    contents = _encoded(fmt)
    assert formats.sniff(contents) == name
    assert bool(ops.is_decodable(tf.constant(contents))) is in_graph


@pytest.mark.parametrize("contents", [b"", b"BZ", b"RIFF\0\0\0\0WAVEfmt ", b"GIF90a", b"hello"])
def test_non_images_are_neither_sniffed_nor_decodable(contents):
    assert formats.sniff(contents) is None
    assert not bool(ops.is_decodable(tf.constant(contents)))
