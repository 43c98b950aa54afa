"""The .tflite model: float = Keras, quantized ones rank like float, builtin ops only, CLI.

Models are converted at 128x128 (the CLI tests at 32x32) to stay fast. The quantized
variants are judged on the shipped model (a random one gives near-constant scores,
which makes a rank correlation meaningless), on scikit-image photos at several
distortion levels: the same kind of real images the int8 calibration uses.
"""

import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import spearmanr

pytest.importorskip("ai_edge_litert", reason="the LiteRT runtime is the [litert] extra")

from diqa_tf import cli
from diqa_tf.cli import convert as convert_cli
from diqa_tf.data import distortions
from diqa_tf.data.files import skimage_photos
from diqa_tf.errors import DIQAError, ModelError
from diqa_tf.export import tflite
from diqa_tf.export.litert_runner import TFLiteScorer
from diqa_tf.inference import Scorer
from diqa_tf.resources import load_model

SIZE = (128, 128)
KINDS = ("jpeg", "gaussian_blur", "white_noise", "contrast")
FORBIDDEN = ("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE")


@pytest.fixture(scope="module")
def shipped():
    return load_model()


@pytest.fixture(scope="module")
def photos():
    """104 real images at SIZE: 8 scikit-image photos, each also at 4 kinds x 3 levels."""
    images = []
    for _, photo in skimage_photos():
        base = tflite.fit_to_input(photo, SIZE)
        images.append(base)
        for kind in KINDS:
            for level in (0, 2, 4):
                index = distortions.ALL_KINDS.index(kind)
                out = distortions.distort(base, index, level, tf.constant([1, level]))
                images.append(out.numpy())
    return images


@pytest.fixture(scope="module")
def converted(shipped, tmp_path_factory):
    """converted(mode) -> (flatbuffer, path) of the shipped model at SIZE, built once."""
    cache = {}
    folder = tmp_path_factory.mktemp("tflite")

    def get(mode):
        if mode not in cache:
            flatbuffer = tflite.convert(shipped, SIZE, mode)
            cache[mode] = flatbuffer, tflite.write_tflite(flatbuffer, folder / f"{mode}.tflite")
        return cache[mode]

    return get


@pytest.fixture(scope="module")
def float_scores(converted, photos):
    return TFLiteScorer(converted("none")[1]).score_arrays(photos)


def test_float_model_matches_keras(shipped, converted, photos):
    scorer = TFLiteScorer(converted("none")[1])
    assert scorer.input_size == SIZE
    images = photos[:13]  # one photo, undistorted and at every kind and level
    keras_out = Scorer(shipped).predict_batch(images)
    # 1e-4 on the model's normalized quality (0..1): float32 round-off of the
    # image-wide means alone reaches ~1e-6 of the score range at 128x128.
    span = shipped.score_scale.high - shipped.score_scale.low
    for image, score, quality_map in zip(images, keras_out["score"], keras_out["quality_map"]):
        out = scorer.predict(image)
        assert np.isfinite(out["score"])
        np.testing.assert_allclose(out["score"], score, rtol=0, atol=1e-4 * span)
        assert out["quality_map"].shape == (32, 32, 1)
        np.testing.assert_allclose(out["quality_map"], quality_map, rtol=0, atol=1e-4 * span)


@pytest.mark.parametrize("mode", ["dynamic", "int8"])
def test_quantized_model_ranks_like_float(converted, photos, float_scores, mode):
    scores = TFLiteScorer(converted(mode)[1]).score_arrays(photos)
    assert np.all(np.isfinite(scores))
    assert spearmanr(scores, float_scores)[0] >= 0.99


@pytest.mark.parametrize("mode", tflite.QUANTIZE_MODES)
def test_every_variant_holds_builtin_ops_only(converted, mode):
    flatbuffer, path = converted(mode)
    names = tflite.operator_names(flatbuffer)
    assert not names & set(FORBIDDEN), names
    assert not any(n.startswith("Flex") for n in names), names
    assert "DEPTH_TO_SPACE" in names  # the normalization (pyrUp) runs inside the model
    assert "MIRROR_PAD" not in names and "FILL" not in names  # the slow formulations
    assert path.read_bytes() == flatbuffer
    if mode == "none":
        assert "DEQUANTIZE" not in names
    else:  # quantization happened: smaller than the float model
        assert len(flatbuffer) < 0.7 * len(converted("none")[0])


def _schema_model(flatbuffer):
    from tensorflow.lite.python import schema_py_generated as schema

    return schema, schema.ModelT.InitFromPackedBuf(flatbuffer, 0)


def test_int8_keeps_normalization_and_first_convs_float(converted):
    """Only CONV_2D runs in int8 (conv3..conv8, 6 of 8); QUANTIZE ops feed it."""
    schema, model = _schema_model(converted("int8")[0])
    graph = model.subgraphs[0]
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    int8_ops = [
        builtin[model.operatorCodes[op.opcodeIndex].builtinCode]
        for op in graph.operators
        if graph.tensors[op.outputs[0]].type == schema.TensorType.INT8
    ]
    assert int8_ops.count("CONV_2D") == 6
    assert set(int8_ops) == {"CONV_2D", "QUANTIZE"}


def test_dynamic_keeps_first_convs_float(converted):
    schema, model = _schema_model(converted("dynamic")[0])
    graph = model.subgraphs[0]
    conv = schema.BuiltinOperator.CONV_2D
    weight_types = [
        graph.tensors[op.inputs[1]].type
        for op in graph.operators
        if model.operatorCodes[op.opcodeIndex].builtinCode == conv
    ]
    float32, int8 = schema.TensorType.FLOAT32, schema.TensorType.INT8
    assert weight_types == [float32, float32] + [int8] * 6


def test_check_refuses_variables_and_flex_ops():
    import keras

    dense = keras.layers.Dense(2)
    dense.build((None, 3))

    @tf.function(input_signature=[tf.TensorSpec([1, 3], tf.float32)])
    def project(x):
        return dense(x)

    # A Keras 3 layer's concrete function converted directly: the known silent failure.
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [project.get_concrete_function()], dense
    )
    with pytest.raises(DIQAError, match="resource-variable ops.*NaN"):
        tflite.check_builtin_only(converter.convert())

    @tf.function(input_signature=[tf.TensorSpec([3, 3], tf.float32)])
    def determinant(x):
        return tf.linalg.det(x)  # no builtin: Select TF ops make it a Flex op

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [determinant.get_concrete_function()], tf.Module()
    )
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    with pytest.raises(DIQAError, match=r"Flex \(Select TF\) ops \(FlexMatrixDeterminant\)"):
        tflite.check_builtin_only(converter.convert())


def test_fit_to_input(textured_image):
    exact = textured_image(40, 56).astype(np.float32)
    np.testing.assert_array_equal(tflite.fit_to_input(exact, (40, 56)), exact)
    wide = tflite.fit_to_input(textured_image(60, 200), (32, 32))
    assert wide.shape == (32, 32, 3)
    small_grey = tflite.fit_to_input(textured_image(20, 24)[..., :1], (40, 40))
    assert small_grey.shape == (40, 40, 3)
    np.testing.assert_array_equal(small_grey[..., 0], small_grey[..., 2])
    with pytest.raises(DIQAError, match="must be"):
        tflite.fit_to_input(np.zeros((4, 4)), (32, 32))


def test_scorer_refuses_missing_and_foreign_files(tmp_path):
    with pytest.raises(ModelError, match="no such .tflite file"):
        TFLiteScorer(tmp_path / "missing.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ModelError, match="not a DIQA .tflite model"):
        TFLiteScorer(junk)


def test_write_is_atomic(tmp_path):
    target = tmp_path / "m.tflite"
    target.write_bytes(b"old")
    tflite.write_tflite(b"new", target)
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["m.tflite"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DIQAError, match="cannot be written"):
        tflite.write_tflite(b"x", blocker / "m.tflite")


# --- The `diqa convert` command ----------------------------------------------------


def run_cli(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_constants_match_the_library():
    assert convert_cli.QUANTIZE_MODES == tflite.QUANTIZE_MODES
    assert convert_cli.DEFAULT_INPUT_SIZE == tflite.DEFAULT_INPUT_SIZE


@pytest.mark.parametrize("mode", ["none", "int8"])
def test_cli_writes_a_working_model(capsys, tiny_quality_model_path, image_folder, tmp_path, mode):
    output = tmp_path / "out" / "diqa.tflite"
    extra = ["--calibration", image_folder] if mode == "int8" else []
    status, out, err = run_cli(
        capsys, "convert", "--model", tiny_quality_model_path, "--output", output,
        "--input-size", "32x48", "--quantize", mode, *extra,
    )
    assert status == 0, err
    assert f"wrote {output}" in out and "[1, 32, 48, 3]" in out
    assert "Traceback" not in err
    assert sorted(p.name for p in output.parent.iterdir()) == ["diqa.tflite"]
    scorer = TFLiteScorer(output)
    assert scorer.input_size == (32, 48)
    assert np.isfinite(scorer.predict(np.full((50, 50, 3), 128.0))["score"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--input-size", "64"], "must be HxW"),
        (["--input-size", "axb"], "must be HxW"),
        (["--input-size", "0x64"], "at least 1"),
        (["--quantize", "int4"], "invalid choice"),
        (["--calibration", "photos"], "only used with --quantize int8"),
    ],
    ids=["one-number", "letters", "zero", "int4", "calibration-without-int8"],
)
def test_cli_usage_errors(capsys, tmp_path, argv, message):
    with pytest.raises(SystemExit) as info:
        cli.main(["convert", "--output", str(tmp_path / "m.tflite"), *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: diqa convert" in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert message in err
    assert not (tmp_path / "m.tflite").exists()


def test_cli_output_must_be_tflite(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        cli.main(["convert", "--output", str(tmp_path / "m.keras")])
    assert info.value.code == 2
    assert "must end in .tflite" in capsys.readouterr().err


def test_cli_errors_are_one_line(capsys, tiny_quality_model_path, tmp_path):
    output = tmp_path / "m.tflite"
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--model", tmp_path / "missing.keras"], "missing.keras: no such model file"),
        (["--model", tiny_quality_model_path, "--input-size", "8x8"], "at least 16 pixels"),
        (["--model", tiny_quality_model_path, "--quantize", "int8", "--calibration", empty],
         "no readable image (PNG, JPEG, BMP, GIF, WebP, TIFF, HEIC, AVIF)"),
    ]
    for argv, message in cases:
        status, out, err = run_cli(capsys, "convert", "--output", output, *argv)
        assert status == 1
        assert err.splitlines() == [err.splitlines()[0]] and err.startswith("diqa: error: ")
        assert message in err
        assert not output.exists()
