"""Bulk scoring on Apache Beam: image files to (path, score) records on any runner.

`ScoreImages` reads each file through Beam's FileSystems (local, gs://, s3://, ...),
checks it with the rules of `diqa predict`, and scores the good ones with an exported
SavedModel's `serving_default` signature. Decoding happens inside that graph, so one
batch may mix image sizes. A file that cannot be scored becomes a (path, reason)
record in a separate `errors` output; it never fails the pipeline.

Needs the `[beam]` extra (apache-beam, and tensorflow-hub, which Beam's TF handler
imports).
"""

import contextlib
import csv
import difflib
import io
import typing

import apache_beam as beam
import tensorflow as tf
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.ml.inference.tensorflow_inference import TFModelHandlerTensor
from apache_beam.options.pipeline_options import PipelineOptions

from diqa_tf.config import PreprocessingConfig
from diqa_tf.data import files, formats
from diqa_tf.errors import ConfigError, InvalidImageError, ModelError, tf_gist
from diqa_tf.export.saved_model import for_its_file

# The shipped model as a SavedModel, beside the .keras file in `saved_models/`.
DEFAULT_SAVED_MODEL = "diqa_clive/1"
METRICS_NAMESPACE = "diqa"


def default_saved_model():
    """The shipped SavedModel folder, resolved on the machine that loads it."""
    from diqa_tf.resources import default_model_path

    path = default_model_path(DEFAULT_SAVED_MODEL)
    if not (path / "saved_model.pb").exists():
        raise ModelError(
            f"{path}: the shipped SavedModel is not installed; pass a SavedModel folder "
            "(`diqa export` writes one)"
        )
    return path


class ScoredImages(typing.NamedTuple):
    """What ScoreImages returns: `scores` (path, score) and `errors` (path, reason)."""

    scores: beam.PCollection
    errors: beam.PCollection


class ScoreImages(beam.PTransform):
    """File paths -> ScoredImages(scores=(path, score), errors=(path, reason)).

    `model` is a SavedModel folder from `diqa export` (any path TensorFlow reads,
    gs:// included; default: the shipped model). Batches hold `batch_size` images
    of any sizes (fewer at the end of a bundle). `large_model=True` loads one copy
    per worker machine, shared by its processes, instead of one per process.
    """

    def __init__(self, model=None, batch_size=8, large_model=True, min_size=None):
        super().__init__()
        self.model = None if model is None else str(model)
        self.batch_size = batch_size
        self.large_model = large_model
        self.min_size = min_size or PreprocessingConfig().min_size

    def expand(self, paths):
        checked = paths | "Read and check" >> beam.ParDo(
            _ReadImage(self.min_size)
        ).with_outputs("errors", main="images")
        handler = SavedModelHandler(
            self.model,
            min_batch_size=self.batch_size,
            max_batch_size=self.batch_size,
            large_model=self.large_model,
        )
        results = (
            checked.images
            | "Score" >> RunInference(KeyedModelHandler(handler))
            | "Split results" >> beam.ParDo(_SplitResults()).with_outputs("errors", main="scores")
        )
        errors = (checked.errors, results.errors) | "Gather errors" >> beam.Flatten()
        return ScoredImages(results.scores, errors)


class SavedModelHandler(TFModelHandlerTensor):
    """Beam's TF handler, loading with tf.saved_model.load and calling `serving_default`.

    The stock handler loads with tf.keras.models.load_model, which Keras 3 refuses
    for a SavedModel folder. Examples are encoded images (bytes); each prediction is
    a float score, or a str reason for an image the graph refused.
    """

    def __init__(self, model_uri=None, **kwargs):
        super().__init__(model_uri or "", inference_fn=_score_batch, **kwargs)

    def load_model(self):
        return _SavedModelScorer(self._model_uri or str(default_saved_model()))

    def get_metrics_namespace(self):
        return "BeamML_DIQA"


class _SavedModelScorer:
    """A loaded SavedModel called with bytes and returning Python floats.

    Plain Python values in and out, so a model shared across processes
    (`large_model`) is called through Beam's proxy without pickling tensors.
    """

    def __init__(self, path):
        self._loaded = tf.saved_model.load(path)
        self._serve = self._loaded.signatures["serving_default"]

    def __call__(self, contents):
        """Scores of encoded images, in order; a refused image gets its reason (str).

        _ReadImage keeps bad images out of batches; this catches what it cannot
        know (e.g. a model with a larger minimum size) without failing the batch.
        """
        try:
            return self._score(contents)
        except tf.errors.InvalidArgumentError as e:
            if len(contents) > 1:
                return [self([image])[0] for image in contents]
            reason = for_its_file(tf_gist(e.message, "no reason given"))
            return [f"the model refused it ({reason})"]

    def _score(self, contents):
        outputs = self._serve(image_bytes=tf.constant(contents, tf.string))
        return outputs["score"].numpy().tolist()


def _score_batch(model, batch, inference_args, model_id=None):
    return [PredictionResult(c, s, model_id) for c, s in zip(batch, model(list(batch)))]


class _ReadImage(beam.DoFn):
    """path -> (path, bytes), or (path, reason) on the `errors` output.

    The same checks as `diqa predict` (files.read_image): readable, not empty,
    decodable, both sides at least `min_size`, and at most WHOLE_IMAGE_MAX_PIXELS
    (the SavedModel scores whole images). One bad image in a batch would fail the
    whole signature call, so bad ones never reach a batch. The formats the graph
    cannot decode (TIFF, HEIC, AVIF) go on as lossless PNGs at their own depth, so
    they score as in `diqa predict`. Decoding here and again in the graph costs a
    second decode per image; the network costs far more.
    """

    def __init__(self, min_size):
        self.min_size = min_size
        self.failed = Metrics.counter(METRICS_NAMESPACE, "images_failed")

    def process(self, path):
        try:
            contents = _read_bytes(path)
            image = files.decode_contents(
                path, contents, self.min_size, files.WHOLE_IMAGE_MAX_PIXELS, native=True
            )
        except InvalidImageError as e:
            self.failed.inc()
            yield beam.pvalue.TaggedOutput("errors", (path, e.reason))
            return
        if formats.sniff(contents) not in formats.TF_FORMATS:
            contents = tf.io.encode_png(image).numpy()
        yield path, contents


def _read_bytes(path):
    try:
        with FileSystems.open(
            path, "application/octet-stream", CompressionTypes.UNCOMPRESSED
        ) as stream:
            return stream.read()
    except FileNotFoundError:
        raise InvalidImageError(path, "no such file") from None
    except IsADirectoryError:
        raise InvalidImageError(path, "is a folder, not an image") from None
    except OSError as e:  # Beam's BeamIOError included
        raise InvalidImageError(path, f"cannot be read ({e.strerror or e})") from None


class _SplitResults(beam.DoFn):
    """(path, PredictionResult) -> (path, score), or (path, reason) on `errors`."""

    def __init__(self):
        self.scored = Metrics.counter(METRICS_NAMESPACE, "images_scored")
        self.failed = Metrics.counter(METRICS_NAMESPACE, "images_failed")

    def process(self, keyed):
        path, result = keyed
        if isinstance(result.inference, str):
            self.failed.inc()
            yield beam.pvalue.TaggedOutput("errors", (path, result.inference))
        else:
            self.scored.inc()
            yield path, result.inference


# --- CSV shards: what `diqa beam-score` writes -----------------------------------------


def csv_line(*fields):
    """One CSV row without its line end (WriteToText adds it); quotes as csv does."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()


def score_to_csv(pipeline, pattern, prefix, model=None, batch_size=8, num_shards=0):
    """Add to `pipeline`: files matching `pattern` -> scored CSV shards.

    Writes `{prefix}-SSSSS-of-NNNNN.csv` (path,score, 4 decimals as `diqa predict`)
    and `{prefix}-errors-SSSSS-of-NNNNN.csv` (path,reason). `num_shards=0` lets the
    runner choose. Rows are in no particular order.
    """
    paths = (
        pipeline
        | "Match files" >> beam.io.fileio.MatchFiles(pattern)
        | "Paths" >> beam.Map(lambda metadata: metadata.path)
    )
    scored = paths | "Score images" >> ScoreImages(model, batch_size)
    for name, rows, header, fmt in (
        ("scores", scored.scores, "path,score", lambda p, s: csv_line(p, f"{s:.4f}")),
        ("errors", scored.errors, "path,reason", csv_line),
    ):
        (
            rows
            | f"Format {name}" >> beam.MapTuple(fmt)
            | f"Write {name}" >> beam.io.WriteToText(
                prefix if name == "scores" else f"{prefix}-errors",
                file_name_suffix=".csv",
                header=header,
                num_shards=num_shards,
            )
        )


def counts(result):
    """(images scored, images failed) from a finished pipeline's metrics.

    Committed values where the runner has them, attempted ones otherwise.
    """
    found = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    totals = {"images_scored": 0, "images_failed": 0}
    for counter in found["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] += value or 0
    return totals["images_scored"], totals["images_failed"]


def pipeline_options(flags):
    """PipelineOptions from command-line flags; unknown or malformed ones raise ConfigError.

    Beam would drop an unknown flag with a warning (a typo then runs on the wrong
    runner or project) and exits on a malformed one after printing its full usage.
    """
    options = PipelineOptions(flags)
    usage = io.StringIO()
    try:
        with contextlib.redirect_stderr(usage):
            given = options.get_all_options(retain_unknown_options=True)
    except SystemExit:
        reason = usage.getvalue().strip().splitlines()[-1].split("error: ", 1)[-1]
        raise ConfigError(f"bad pipeline option: {reason}") from None
    known = PipelineOptions([]).get_all_options()
    unknown = sorted(set(given) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f" (did you mean --{close[0]}?)" if close else ""
        raise ConfigError(f"unknown pipeline option: --{unknown[0]}{hint}")
    return options
