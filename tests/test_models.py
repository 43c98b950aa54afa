"""The DIQA Keras models (DESIGN 3-4): sizes, shapes, serialization, training steps."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from diqa_tf.config import PreprocessingConfig, ScoreScale
from diqa_tf.layers import ScoreMapping
from diqa_tf.models import DIQABackbone, ErrorMapModel, QualityModel
from diqa_tf.models.quality_model import pairwise_ranking


def model_inputs(rng, n, h, w):
    return {
        "image": (rng.standard_normal((n, h, w, 1)) * 15.0).astype(np.float32),
        "features": rng.random((n, 2)).astype(np.float32),
    }


def stage1_targets(rng, n, h, w):
    shape = (n, -(-h // 4), -(-w // 4), 1)
    return {
        "error_map": rng.random(shape).astype(np.float32) + 0.1,
        "reliability": rng.random(shape).astype(np.float32),
    }


def assert_outputs_equal(a, b, atol=1e-6):
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_allclose(np.asarray(a[key]), np.asarray(b[key]), atol=atol, rtol=0)


@pytest.fixture(scope="module")
def quality_model():
    keras.utils.set_random_seed(1)
    return QualityModel(score_scale=ScoreScale(1.0, 9.0, higher_is_better=False))


def test_error_map_model_has_the_paper_parameter_count():
    model = ErrorMapModel()
    assert model.count_params() == 381_329
    assert model.backbone.count_params() == 381_329 - 129


def test_quality_model_output_shapes(rng, quality_model):
    out = quality_model(model_inputs(rng, 2, 17, 33))
    assert tuple(out["score"].shape) == (2,)
    assert tuple(out["error_map"].shape) == (2, 5, 9, 1)
    assert tuple(out["quality_map"].shape) == (2, 5, 9, 1)
    stage1 = ErrorMapModel()({"image": model_inputs(rng, 2, 17, 33)["image"]})
    assert tuple(stage1["error_map"].shape) == (2, 5, 9, 1)


def test_error_map_model_config_round_trip(rng):
    config = PreprocessingConfig(reliability_floor=0.1, input_scale=0.05)
    model = ErrorMapModel(preprocessing_config=config)
    clone = ErrorMapModel.from_config(model.get_config())
    assert type(clone) is ErrorMapModel
    assert isinstance(clone.backbone, DIQABackbone)
    assert clone.preprocessing_config == config
    assert clone.backbone.input_scale == 0.05
    clone.set_weights(model.get_weights())
    x = {"image": model_inputs(rng, 2, 16, 20)["image"]}
    assert_outputs_equal(model(x), clone(x))


def test_quality_model_config_round_trip(rng, quality_model):
    clone = QualityModel.from_config(quality_model.get_config())
    assert type(clone) is QualityModel
    assert clone.score_scale == quality_model.score_scale
    assert clone.hidden_units == quality_model.hidden_units
    clone.set_weights(quality_model.get_weights())
    x = model_inputs(rng, 2, 17, 20)
    assert_outputs_equal(quality_model(x), clone(x), atol=1e-5)


@pytest.mark.parametrize("safe_mode", [None, True])
def test_quality_model_keras_file_round_trip(rng, tmp_path, quality_model, safe_mode):
    path = tmp_path / "quality.keras"
    quality_model.save(path)
    kwargs = {} if safe_mode is None else {"safe_mode": safe_mode}
    loaded = keras.saving.load_model(path, **kwargs)
    assert type(loaded) is QualityModel
    assert loaded.score_scale == quality_model.score_scale
    x = model_inputs(rng, 2, 17, 20)
    assert_outputs_equal(quality_model(x), loaded(x), atol=0)


def test_error_map_model_keras_file_round_trip(rng, tmp_path):
    model = ErrorMapModel(preprocessing_config=PreprocessingConfig(reliability_floor=0.1))
    path = tmp_path / "stage1.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is ErrorMapModel
    assert loaded.preprocessing_config == model.preprocessing_config
    x = {"image": model_inputs(rng, 1, 16, 16)["image"]}
    assert_outputs_equal(model(x), loaded(x), atol=0)


def test_from_stage1_copies_backbone_and_head(rng):
    stage1 = ErrorMapModel(preprocessing_config=PreprocessingConfig(reliability_floor=0.1))
    # Weights that no fresh initialization could give.
    stage1.set_weights([w + rng.normal(0, 0.01, w.shape) for w in stage1.get_weights()])
    stage2 = QualityModel.from_stage1(stage1, score_scale=ScoreScale(0.0, 10.0))
    assert stage2.preprocessing_config == stage1.preprocessing_config
    for a, b in zip(stage1.backbone.get_weights(), stage2.backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        stage1.get_layer("error_map").get_weights(),
        stage2.get_layer("error_map").get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    x = model_inputs(rng, 2, 16, 24)
    np.testing.assert_allclose(
        stage2(x)["error_map"], stage1({"image": x["image"]})["error_map"], atol=1e-6
    )


@pytest.mark.parametrize("higher_is_better", [False, True])
def test_score_mapping(higher_is_better):
    mapping = ScoreMapping(low=10.0, high=90.0, higher_is_better=higher_is_better)
    q = np.array([0.0, 0.25, 1.0], np.float32)
    scores = np.asarray(mapping(q))
    if higher_is_better:
        np.testing.assert_allclose(scores, [10.0, 30.0, 90.0], rtol=1e-6)
    else:  # DMOS: the best quality is the lowest score
        np.testing.assert_allclose(scores, [90.0, 70.0, 10.0], rtol=1e-6)
    np.testing.assert_allclose(mapping.normalize(scores), q, atol=1e-6)
    np.testing.assert_allclose(mapping(mapping.normalize([20.0, 55.0])), [20.0, 55.0], rtol=1e-6)
    clone = ScoreMapping.from_config(mapping.get_config())
    np.testing.assert_allclose(clone(q), scores, rtol=1e-6)


def test_score_does_not_depend_on_the_batch(rng, quality_model):
    a, b = model_inputs(rng, 1, 20, 28), model_inputs(rng, 1, 20, 28)
    b["image"] *= 3.0
    batch = {k: np.concatenate([a[k], b[k]]) for k in a}
    alone = quality_model(a)
    together = quality_model(batch)
    reversed_batch = quality_model({k: v[::-1].copy() for k, v in batch.items()})
    np.testing.assert_allclose(alone["score"][0], together["score"][0], atol=1e-5)
    np.testing.assert_allclose(alone["score"][0], reversed_batch["score"][1], atol=1e-5)
    np.testing.assert_allclose(alone["quality_map"][0], together["quality_map"][0], atol=1e-5)


def _finite_loss(history):
    loss = history.history["loss"]
    return len(loss) == 1 and np.isfinite(loss[0])


def test_error_map_model_fit_step(rng):
    model = ErrorMapModel()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01))
    before = model.get_weights()
    x = {"image": model_inputs(rng, 4, 16, 16)["image"]}
    history = model.fit(x, stage1_targets(rng, 4, 16, 16), batch_size=4, epochs=1, verbose=0)
    assert _finite_loss(history)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    val = model.evaluate(x, stage1_targets(rng, 4, 16, 16), verbose=0, return_dict=True)
    assert np.isfinite(val["loss"])


def test_quality_model_fit_step(rng):
    model = QualityModel()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01))
    before = model.get_weights()
    x = model_inputs(rng, 4, 16, 16)
    scores = rng.uniform(0.0, 100.0, 4).astype(np.float32)
    history = model.fit(x, scores, batch_size=4, epochs=1, verbose=0)
    assert _finite_loss(history)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_mixed_precision_model_becomes_float32_with_same_weights():
    from diqa_tf.training.precision import as_float32, precision_policy

    with precision_policy("mixed_bfloat16"):
        mixed = QualityModel()
    assert mixed.get_layer("quality").compute_dtype == "bfloat16"
    copy = as_float32(mixed, QualityModel)
    assert keras.config.dtype_policy().name == "float32"
    layers = copy.layers + copy.backbone.layers
    assert all(layer.compute_dtype == "float32" for layer in layers if layer.weights)
    for a, b in zip(mixed.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_ranking_term_adds_weight_times_margin_for_an_unchanged_copy(rng, quality_model):
    """A 'distorted' copy equal to its original violates the margin by exactly the margin."""
    inputs = model_inputs(rng, 2, 24, 24)
    scores = np.array([30.0, 70.0], np.float32)
    quality_model.compile(optimizer="sgd", ranking_weight=2.0, ranking_margin=0.05)
    plain = quality_model._per_sample_loss((inputs, scores), training=False).numpy()
    paired = {**inputs, "distorted_image": inputs["image"], "distorted_features": inputs["features"]}
    ranked = quality_model._per_sample_loss((paired, scores), training=False).numpy()
    np.testing.assert_allclose(ranked, plain + 2.0 * 0.05, rtol=1e-5, atol=1e-6)
    config = quality_model.get_compile_config()
    assert (config["ranking_weight"], config["ranking_margin"]) == (2.0, 0.05)


def test_reference_ranking_adds_its_weighted_mean_hinge_to_each_sample(rng, quality_model):
    """Pristine crops carry no score: only their hinge, averaged over them, is added."""
    inputs = model_inputs(rng, 2, 24, 24)
    scores = np.array([30.0, 70.0], np.float32)
    quality_model.compile(optimizer="sgd", ranking_margin=0.05, reference_ranking_weight=3.0)
    plain = quality_model._per_sample_loss((inputs, scores), training=False).numpy()
    pristine = model_inputs(rng, 3, 24, 24)
    distorted = {**pristine, "image": pristine["image"][::-1]}  # crop 0 <-> crop 2
    with_references = {
        **inputs,
        **{f"reference_{k}": v for k, v in pristine.items()},
        **{f"reference_distorted_{k}": v for k, v in distorted.items()},
    }
    loss = quality_model._per_sample_loss((with_references, scores), training=False).numpy()
    normalize = quality_model.score_mapping.normalize
    original = normalize(quality_model(pristine)["score"]).numpy()
    copy = normalize(quality_model(distorted)["score"]).numpy()
    hinge = np.maximum(0.05 - (original - copy), 0.0)
    assert hinge[1] == pytest.approx(0.05, abs=1e-6)  # an unchanged copy pays the margin
    np.testing.assert_allclose(loss, plain + 3.0 * hinge.mean(), rtol=1e-5, atol=1e-6)
    assert quality_model.get_compile_config()["reference_ranking_weight"] == 3.0


def test_ladder_adds_its_weighted_mean_hinge_between_the_rungs(rng, quality_model):
    """Each heavier rung must score `ranking_margin` below its lighter one: the mean of
    those hinges, weighted, is added to each sample's loss."""
    inputs = model_inputs(rng, 2, 24, 24)
    scores = np.array([30.0, 70.0], np.float32)
    quality_model.compile(optimizer="sgd", ranking_margin=0.05, ladder_weight=2.0)
    plain = quality_model._per_sample_loss((inputs, scores), training=False).numpy()
    lighter = model_inputs(rng, 3, 24, 24)
    heavier = {**lighter, "image": lighter["image"][::-1]}  # rung 1 unchanged: pays 0.05
    rungs = {**inputs, **{f"ladder_{k}": v for k, v in lighter.items()},
             **{f"ladder_distorted_{k}": v for k, v in heavier.items()}}
    loss = quality_model._per_sample_loss((rungs, scores), training=False).numpy()
    normalize = quality_model.score_mapping.normalize
    gap = normalize(quality_model(lighter)["score"]) - normalize(quality_model(heavier)["score"])
    hinge = np.maximum(0.05 - gap.numpy(), 0.0)
    assert hinge[1] == pytest.approx(0.05, abs=1e-6)
    np.testing.assert_allclose(loss, plain + 2.0 * hinge.mean(), rtol=1e-5, atol=1e-6)
    assert quality_model.get_compile_config()["ladder_weight"] == 2.0


def test_error_map_term_adds_its_weighted_mean_stage1_loss(rng, quality_model):
    """Stage-1 pairs carry no score: stage 1's own loss on them (as ErrorMapModel computes
    it, with the quality model's backbone and head), averaged, is added to each sample."""
    inputs = model_inputs(rng, 2, 24, 24)
    scores = np.array([30.0, 70.0], np.float32)
    quality_model.compile(optimizer="sgd", error_map_weight=4.0)
    plain = quality_model._per_sample_loss((inputs, scores), training=False).numpy()
    image = model_inputs(rng, 3, 32, 32)["image"]
    targets = {
        "error_map": rng.random((3, 8, 8, 1)).astype(np.float32),
        "reliability": rng.random((3, 8, 8, 1)).astype(np.float32),
    }
    with_pairs = {**inputs, "pair_image": image,
                  **{f"pair_{k}": v for k, v in targets.items()}}
    loss = quality_model._per_sample_loss((with_pairs, scores), training=False).numpy()

    stage1 = ErrorMapModel(preprocessing_config=quality_model.preprocessing_config)
    stage1.backbone.set_weights(quality_model.backbone.get_weights())
    stage1.get_layer("error_map").set_weights(quality_model.get_layer("error_map").get_weights())
    own = stage1._per_sample_loss(({"image": image}, targets), training=False).numpy()
    assert own.mean() > 0
    np.testing.assert_allclose(loss, plain + 4.0 * own.mean(), rtol=1e-5, atol=1e-6)
    assert quality_model.get_compile_config()["error_map_weight"] == 4.0


def test_error_map_term_trains_the_backbone_not_the_frozen_head(rng):
    """Only the backbone can lower the stage-1 term: the error-map head stays as stage 1
    left it, so `diqa explain`'s maps read the backbone as stage 1 trained them to."""
    model = QualityModel()
    model.compile(optimizer=keras.optimizers.SGD(1e-3), error_map_weight=1.0)
    head = [w.copy() for w in model.get_layer("error_map").get_weights()]
    backbone = [w.copy() for w in model.backbone.get_weights()]
    inputs = {
        **model_inputs(rng, 2, 16, 16),
        "pair_image": model_inputs(rng, 2, 16, 16)["image"],
        "pair_error_map": rng.random((2, 4, 4, 1)).astype(np.float32),
        "pair_reliability": np.ones((2, 4, 4, 1), np.float32),
    }
    model.fit(inputs, np.array([20.0, 60.0], np.float32), verbose=0)
    for before, after in zip(head, model.get_layer("error_map").get_weights()):
        np.testing.assert_array_equal(before, after)
    assert any(not np.array_equal(b, a) for b, a in zip(backbone, model.backbone.get_weights()))


def test_compiled_quality_model_reloads_compiled_without_warnings(rng, tmp_path):
    import warnings

    model = QualityModel()
    model.compile(optimizer=keras.optimizers.Nadam(1e-4), ranking_weight=0.2, ranking_margin=0.04)
    model.fit(model_inputs(rng, 2, 16, 16), np.array([20.0, 60.0], np.float32), verbose=0)
    model.save(tmp_path / "compiled.keras")
    QualityModel().save(tmp_path / "plain.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reloaded = keras.saving.load_model(tmp_path / "compiled.keras")
        plain = keras.saving.load_model(tmp_path / "plain.keras")
    assert (reloaded.ranking_weight, reloaded.ranking_margin) == (0.2, 0.04)
    assert isinstance(reloaded.optimizer, keras.optimizers.Nadam)
    assert plain.get_compile_config() is None


def test_pairwise_ranking_is_zero_when_exact_and_charges_misordered_pairs():
    target = tf.constant([0.2, 0.5, 0.9])
    np.testing.assert_allclose(pairwise_ranking(target, target).numpy(), 0.0, atol=1e-7)
    # Right order but half the gaps: each pair pays the missing half of its gap.
    half = pairwise_ranking(target * 0.5, target).numpy()
    np.testing.assert_allclose(half, [(0.15 + 0.35) / 2, (0.15 + 0.2) / 2, (0.35 + 0.2) / 2],
                               rtol=1e-5)
    # Swapping the last two predictions: that pair pays its gap plus the reversal (0.8),
    # and the first and last, now 0.3 apart instead of 0.7, the missing 0.4.
    swapped = pairwise_ranking(tf.constant([0.2, 0.9, 0.5]), target).numpy()
    np.testing.assert_allclose(swapped, [0.4 / 2, 0.8 / 2, (0.4 + 0.8) / 2], rtol=1e-5)


def test_pair_ranking_weight_adds_the_pairwise_term(rng, quality_model):
    inputs = model_inputs(rng, 3, 24, 24)
    scores = np.array([30.0, 70.0, 50.0], np.float32)
    quality_model.compile(optimizer="sgd")
    plain = quality_model._per_sample_loss((inputs, scores), training=False).numpy()
    quality_model.compile(optimizer="sgd", pair_ranking_weight=0.5)
    paired = quality_model._per_sample_loss((inputs, scores), training=False).numpy()
    predicted = quality_model.score_mapping.normalize(quality_model(inputs)["score"])
    target = quality_model.score_mapping.normalize(tf.constant(scores))
    expected = plain + 0.5 * pairwise_ranking(predicted, target).numpy()
    np.testing.assert_allclose(paired, expected, rtol=1e-5, atol=1e-6)
    assert quality_model.get_compile_config()["pair_ranking_weight"] == 0.5
