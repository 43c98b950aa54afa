"""Every DIQA constant in one place, as frozen dataclasses.

The defaults are DESIGN.md's; each says whether it is the paper's or our choice.
Configs load from TOML with `from_dict`, which refuses unknown keys (with a hint),
so a typo in a recipe fails loudly instead of silently training something else.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from pathlib import Path
from typing import Any, Mapping

from diqa_tf.errors import ConfigError


def _from_dict(cls, values: Mapping[str, Any], where: str):
    """Build dataclass `cls` from `values`; unknown keys raise with a hint."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise ConfigError(f"Unknown key `{key}` in [{where}].{hint}")
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class PreprocessingConfig:
    """How an image becomes the network input (DESIGN 1-2)."""

    # Paper: error map exponent p and reliability slope alpha (on 0-255).
    error_exponent: float = 0.2
    reliability_alpha: float = 1.0
    # Paper: a two-level Gaussian pyramid gives I_low (1/4 scale).
    pyramid_levels: int = 2
    # Ours: the smallest side we accept (the network downsamples by 4).
    min_size: int = 16
    # Ours: the network sees I_hat / 16 (I_hat on 0-255 has std ~15).
    input_scale: float = 1.0 / 16.0
    # Ours: sigma_low (std of I_low, 0-255) is fed as sigma_low / 64; mu_r is in [0, 1].
    sigma_low_scale: float = 1.0 / 64.0
    # Ours: r_hat = r / max(mean(r), floor). Flat crops have mean(r) ~ 0 and would
    # otherwise give 0/0 = NaN or an exploding weight (DESIGN 2).
    reliability_floor: float = 0.05

    @property
    def output_stride(self) -> int:
        return 2**self.pyramid_levels

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "PreprocessingConfig":
        return _from_dict(cls, values, "preprocessing")


@dataclasses.dataclass(frozen=True)
class ScoreScale:
    """The dataset's score range and direction; the model trains on [0, 1], higher = better."""

    low: float = 0.0
    high: float = 100.0
    higher_is_better: bool = True

    def __post_init__(self):
        if not self.high > self.low:
            raise ConfigError(
                f"`high` must be greater than `low`. Received: low={self.low}, high={self.high}"
            )

    def clip(self, score: float) -> float:
        """`score` limited to [low, high] (a score beyond them: see the README)."""
        return min(max(score, self.low), self.high)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ScoreScale":
        return _from_dict(cls, values, "score_scale")


# "auto": mixed_bfloat16 where the hardware computes bfloat16 natively, else float32
# (training.precision.resolve_precision).
PRECISIONS = ("float32", "auto", "mixed_bfloat16", "mixed_float16")


def _check_precision(precision):
    if precision not in PRECISIONS:
        raise ConfigError(f"`precision` must be one of {PRECISIONS}. Received: {precision!r}")


def _check_whole(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"`{name}` must be a whole number >= 1. Received: {value!r}")


def _check_focus_kinds(kinds):
    # Imported here, not at the top: only this check needs TensorFlow's module.
    from diqa_tf.data.distortions import DISTORTIONS

    unknown = [k for k in kinds if k not in DISTORTIONS]
    if not kinds or unknown:
        raise ConfigError(
            f"`ranking_focus_kinds` must name one or more of {', '.join(DISTORTIONS)}. "
            f"Received: {list(kinds)!r}"
        )


@dataclasses.dataclass(frozen=True)
class Stage1Config:
    """Stage 1: objective error maps from synthetic pairs (DESIGN 4)."""

    crop_size: int = 112  # paper
    batch_size: int = 32  # paper
    learning_rate: float = 2e-4  # paper (Nadam)
    steps_per_epoch: int = 200
    epochs: int = 20
    validation_references: float = 0.1  # fraction of references held out (by content)
    validation_pairs: int = 256
    early_stopping_patience: int = 4
    # Ours: crops whose reference has mean reliability below this are dropped (flat sky).
    min_crop_reliability: float = 0.2
    # Ours: "mixed_bfloat16" (or "auto") halves step time on CPUs with AMX/AVX-512
    # BF16; elsewhere TF emulates bfloat16, many times slower. The saved model is
    # always float32.
    precision: str = "float32"
    seed: int = 0
    # Ours: data echoing; each generated training pair is used this many times (copies
    # shuffled apart), so pair generation costs 1/pair_echo per step. 1 = always fresh
    # pairs. Raise it when generating pairs stalls training (see BENCHMARKS.md).
    pair_echo: int = 1

    def __post_init__(self):
        _check_precision(self.precision)
        _check_whole("pair_echo", self.pair_echo)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Stage1Config":
        return _from_dict(cls, values, "stage1")


@dataclasses.dataclass(frozen=True)
class Stage2Config:
    """Stage 2: subjective scores, fine-tuning the whole network (DESIGN 4)."""

    batch_size: int = 8
    learning_rate: float = 1e-4
    # Ours: train on random square crops for speed (0 = whole images); evaluation is
    # always on whole images.
    crop_size: int = 256
    epochs: int = 20
    # Ours: cosine decay of the learning rate to this fraction over all epochs.
    final_learning_rate_fraction: float = 0.05
    holdout_fraction: float = 0.2
    seed: int = 0
    exclude_training_images: bool = True  # CLIVE's t1..t7 subject-training images
    # Ours, not the paper's (0 = the paper's loss): weight and margin (on the [0, 1]
    # scale) of a hinge asking a synthetically distorted crop to score below its
    # original; see QualityModel._per_sample_loss. Needs crop_size > 0.
    ranking_weight: float = 0.0
    ranking_margin: float = 0.03
    # Ours: the distorted copies are of any type at levels 1-4 (of 0-4), because the
    # lightest level of some types (sharpening, contrast, exposure) can improve a photo.
    # This share of them is drawn instead from `ranking_focus_kinds` at all 5 levels, the
    # lightest included: JPEG, blur and noise never improve a photo, and CLIVE rarely
    # shows them added to a good one. 0 = off.
    ranking_focus_fraction: float = 0.0
    ranking_focus_kinds: tuple = ("jpeg", "gaussian_blur", "white_noise")
    # Ours (0 = the paper's loss): weight of a pairwise term between the photos of a
    # batch, asking their predicted order and gaps to match their scores'; see
    # models.quality_model.pairwise_ranking. Costs no extra forward pass.
    pair_ranking_weight: float = 0.0
    # Ours (0 = off): weight of the same hinge (same margin) on crops of PRISTINE photos
    # given to training (`diqa train stage2 --ranking-references DIR`); half of their
    # distorted copies are JPEG, blur or noise at all 5 levels, the rest as the ranking
    # term's (data.stage2.reference_batches). CLIVE's photos are camera JPEGs already, so
    # the hinge on them cannot teach that light JPEG on a clean photo is worse; see
    # QualityModel._per_sample_loss. Each step adds `reference_batch_size` such crops
    # of `reference_crop_size` pixels (and their copies) to the batch.
    reference_ranking_weight: float = 0.0
    reference_batch_size: int = 8
    reference_crop_size: int = 128
    # Ours (0 = off): weight of stage 1's own loss (DESIGN 2) on synthetic pairs made from
    # the same pristine photos, `error_map_batch_size` crops of stage1.crop_size per step,
    # its mean added to each sample's loss. Fine-tuning on CLIVE alone wears away what
    # stage 1 taught the backbone about JPEG, blur and noise; this keeps it readable by the
    # (frozen) error-map head, which also keeps `diqa explain`'s maps faithful.
    error_map_weight: float = 0.0
    error_map_batch_size: int = 16
    # Ours (0 = off): weight of a ladder hinge on crops of the same pristine photos: of two
    # copies of a crop distorted by JPEG, blur or white noise at levels L and L + 1, the
    # heavier must score `ranking_margin` below the lighter (`reference_batch_size` pairs of
    # `reference_crop_size` pixels a step; data.stage2.ladder_batches). The hinges against the
    # original cannot order heavy levels among themselves: heavy blur flattens the network's
    # input, and levels 2-4 came out unordered at the bottom of the scale, some rising.
    ladder_weight: float = 0.0
    precision: str = "float32"
    # Ours: data echoing, as stage1.pair_echo; each training crop (with its distorted
    # copy) is used this many times. Needs crop_size > 0. 1 = always fresh crops.
    crop_echo: int = 1

    def __post_init__(self):
        _check_precision(self.precision)
        _check_whole("crop_echo", self.crop_echo)
        if self.crop_echo > 1 and not self.crop_size:
            raise ConfigError("`crop_echo` needs training crops: set a `crop_size` above 0")
        if not 0.0 <= self.ranking_focus_fraction <= 1.0:
            raise ConfigError(
                "`ranking_focus_fraction` must be between 0 and 1. "
                f"Received: {self.ranking_focus_fraction!r}"
            )
        if self.ranking_focus_fraction > 0:
            if not self.ranking_weight:
                raise ConfigError(
                    "`ranking_focus_fraction` shapes the ranking term: set a "
                    "`ranking_weight` above 0"
                )
            _check_focus_kinds(self.ranking_focus_kinds)
        if self.reference_ranking_weight < 0:
            raise ConfigError(
                "`reference_ranking_weight` must be 0 (off) or above. "
                f"Received: {self.reference_ranking_weight!r}"
            )
        _check_whole("reference_batch_size", self.reference_batch_size)
        _check_whole("reference_crop_size", self.reference_crop_size)
        if self.error_map_weight < 0:
            raise ConfigError(
                "`error_map_weight` must be 0 (off) or above. "
                f"Received: {self.error_map_weight!r}"
            )
        _check_whole("error_map_batch_size", self.error_map_batch_size)
        if self.ladder_weight < 0:
            raise ConfigError(
                f"`ladder_weight` must be 0 (off) or above. Received: {self.ladder_weight!r}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "Stage2Config":
        return _from_dict(cls, values, "stage2")


@dataclasses.dataclass(frozen=True)
class TrainingRecipe:
    """A whole training recipe, as kept in one TOML file (see configs/)."""

    preprocessing: PreprocessingConfig = PreprocessingConfig()
    stage1: Stage1Config = Stage1Config()
    stage2: Stage2Config = Stage2Config()
    score_scale: ScoreScale = ScoreScale()

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainingRecipe":
        sections = {
            "preprocessing": PreprocessingConfig,
            "stage1": Stage1Config,
            "stage2": Stage2Config,
            "score_scale": ScoreScale,
        }
        kwargs = {}
        for key, value in values.items():
            if key not in sections and not isinstance(value, Mapping):
                owners = [name for name, section in sections.items()
                          if key in {f.name for f in dataclasses.fields(section)}]
                where = (" under " + " or ".join(f"`[{name}]`" for name in owners)
                         if owners else " inside a section")
                raise ConfigError(f"`{key}` is outside any section: put it{where}.")
            if key not in sections:
                close = difflib.get_close_matches(key, sections, n=1)
                hint = f" Did you mean `[{close[0]}]`?" if close else ""
                raise ConfigError(f"Unknown section `[{key}]`.{hint}")
            if not isinstance(value, Mapping):
                raise ConfigError(f"`{key}` must be a table. Received: {value!r}")
            kwargs[key] = sections[key].from_dict(value)
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path) -> "TrainingRecipe":
        path = Path(path)
        try:
            with path.open("rb") as f:
                values = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from None
        try:
            return cls.from_dict(values)
        except (ConfigError, TypeError) as e:
            raise ConfigError(f"{path}: {e}") from None
