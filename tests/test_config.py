"""Configs: strict loading with hints, and the shipped recipe parses."""

from pathlib import Path

import pytest

from diqa_tf.config import PreprocessingConfig, ScoreScale, TrainingRecipe
from diqa_tf.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_design_constants():
    config = PreprocessingConfig()
    assert (config.error_exponent, config.reliability_alpha, config.pyramid_levels) == (0.2, 1.0, 2)
    assert config.output_stride == 4


def test_unknown_key_raises_with_hint():
    with pytest.raises(ConfigError, match="Did you mean `error_exponent`"):
        PreprocessingConfig.from_dict({"error_exponet": 0.3})


def test_unknown_section_raises_with_hint():
    with pytest.raises(ConfigError, match=r"Did you mean `\[stage1\]`"):
        TrainingRecipe.from_dict({"stage_1": {}})


def test_setting_outside_a_section_names_its_section():
    with pytest.raises(ConfigError, match=r"`error_exponent` is outside any section: put it "
                       r"under `\[preprocessing\]`"):
        TrainingRecipe.from_dict({"error_exponent": 0.2})
    with pytest.raises(ConfigError, match=r"under `\[stage1\]` or `\[stage2\]`"):
        TrainingRecipe.from_dict({"batch_size": 8})
    with pytest.raises(ConfigError, match="`colour` is outside any section: put it inside a section"):
        TrainingRecipe.from_dict({"colour": 1})


def test_bad_precision_and_scale_raise():
    with pytest.raises(ConfigError, match="precision"):
        TrainingRecipe.from_dict({"stage1": {"precision": "fp8"}})
    with pytest.raises(ConfigError, match="greater than"):
        ScoreScale(low=5, high=1)
    for echo in (0, 1.5, True):
        with pytest.raises(ConfigError, match="`pair_echo` must be a whole number >= 1"):
            TrainingRecipe.from_dict({"stage1": {"pair_echo": echo}})
        with pytest.raises(ConfigError, match="`crop_echo` must be a whole number >= 1"):
            TrainingRecipe.from_dict({"stage2": {"crop_echo": echo}})
    with pytest.raises(ConfigError, match="`crop_echo` needs training crops"):
        TrainingRecipe.from_dict({"stage2": {"crop_echo": 2, "crop_size": 0}})


@pytest.mark.parametrize(
    "stage2, message",
    [
        ({"ranking_weight": 0.2, "ranking_focus_fraction": 1.5}, "between 0 and 1"),
        ({"ranking_weight": 0.2, "ranking_focus_fraction": 0.5,
          "ranking_focus_kinds": ["jpeg", "jpg"]}, "must name one or more of jpeg"),
        ({"ranking_weight": 0.2, "ranking_focus_fraction": 0.5, "ranking_focus_kinds": []},
         "must name one or more"),
        ({"ranking_focus_fraction": 0.5}, "set a `ranking_weight` above 0"),
        ({"reference_ranking_weight": -0.1}, "`reference_ranking_weight` must be 0"),
        ({"reference_batch_size": 0}, "`reference_batch_size` must be a whole number"),
        ({"reference_crop_size": 12.5}, "`reference_crop_size` must be a whole number"),
        ({"error_map_weight": -1.0}, "`error_map_weight` must be 0"),
        ({"error_map_batch_size": 0}, "`error_map_batch_size` must be a whole number"),
        ({"ladder_weight": -0.5}, "`ladder_weight` must be 0"),
    ],
)
def test_bad_ranking_focus_raises(stage2, message):
    with pytest.raises(ConfigError, match=message):
        TrainingRecipe.from_dict({"stage2": stage2})


def test_load_reports_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[stage1\n")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        TrainingRecipe.load(path)
    with pytest.raises(ConfigError, match="config file not found"):
        TrainingRecipe.load(tmp_path / "missing.toml")


def test_shipped_recipe_loads():
    recipe = TrainingRecipe.load(ROOT / "configs" / "shipped.toml")
    assert recipe.preprocessing == PreprocessingConfig()
    assert recipe.stage1.crop_size == 112 and recipe.stage1.batch_size == 32
    assert recipe.score_scale == ScoreScale(0.0, 100.0, True)
    # The model card's accuracy is the recipe's cross-validation: it trains on every photo.
    assert recipe.stage2.holdout_fraction == 0.0


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("*.toml")), ids=lambda p: p.name)
def test_every_committed_recipe_loads(path):
    """Recipes in configs/ (the shipped one and the CV candidates) stay loadable."""
    assert isinstance(TrainingRecipe.load(path), TrainingRecipe)
