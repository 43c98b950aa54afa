"""Bulk scoring on Apache Spark: a DataFrame of image files to (path, score, error) rows.

`score_images` runs through `mapInPandas`. Each Python worker loads the model once,
for the first task that needs it (Spark reuses its Python workers, so later tasks
find it loaded), and scores each Arrow batch with `Scorer`, the code of `diqa
predict`: images of one size share a batch, large images are scored in tiles.

Each row names a file by `path`. Either the workers read it there (a local path or
`file:` URI that every worker sees: one machine, or a shared mount), or the row also
holds the file's bytes in `content`, as `spark.read.format("binaryFile")` gives them
from HDFS, S3 or any Hadoop filesystem. An image that cannot be scored (missing,
unreadable, corrupt, too small or too large) gets a null score and its reason in
`error`; it never fails the job.

Needs the `[spark]` extra (pyspark, pandas, pyarrow).
"""

import functools
import logging
import re
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
from pyspark import SparkFiles, StorageLevel, TaskContext
from pyspark.sql import functions as F

from diqa_tf.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

SCHEMA = "path string, score double, error string"
FORMATS = ("csv", "parquet")
NOT_LOCAL = (
    "not a local path: give the file's bytes in a `content` column "
    '(spark.read.format("binaryFile")) to score files on HDFS, S3 or other stores'
)

# In each Python worker: (model file name, batch size) -> Scorer.
_SCORERS = {}


def score_images(df, model=None, batch_size=8):
    """DataFrame with `path` (and optionally `content`) -> DataFrame(path, score, error).

    `model` is a DIQA `.keras` file on the driver, or a URI that
    SparkContext.addFile takes (hdfs://, s3a://, http://); Spark ships it to the
    executors. Without it, each worker loads the shipped model of its own installed
    diqa-tf. `score` is null where `error` says why the image was not scored. Lazy
    like any DataFrame: nothing runs until an action.
    """
    if "path" not in df.columns:
        raise ConfigError(f"`df` must have a `path` column. Received columns: {df.columns}")
    if batch_size < 1:
        raise ConfigError(f"`batch_size` must be at least 1. Received: batch_size={batch_size}")
    model_name = None
    if model is not None:
        model = str(model)
        if "://" not in model and not Path(model).is_file():
            raise ModelError(f"{model}: no such model file")
        df.sparkSession.sparkContext.addFile(model)
        model_name = model.rstrip("/").rsplit("/", 1)[-1]
    columns = ["path", "content"] if "content" in df.columns else ["path"]
    return df.select(*columns).mapInPandas(
        functools.partial(_score_batches, model_name, batch_size), SCHEMA
    )


def write_scores(scored, output, file_format="csv"):
    """Write `score_images` rows to OUTPUT/scores (path,score) and OUTPUT/errors (path,reason).

    Each is a Spark output folder of part files (Spark's commit protocol moves them
    into place when the job succeeds, and writes `_SUCCESS`). CSV scores have 4
    decimals, as `diqa predict` writes them; Parquet keeps the doubles. Either
    folder existing already fails the job. Scores once (the rows are cached for both
    writes) and returns (images scored, images failed).
    """
    if file_format not in FORMATS:
        raise ConfigError(f"`file_format` must be one of {FORMATS}. Received: {file_format!r}")
    output = str(output).rstrip("/")
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        good = scored.filter(F.col("error").isNull()).select("path", "score")
        if file_format == "csv":
            good = good.withColumn("score", F.format_string("%.4f", "score"))
        bad = scored.filter(F.col("error").isNotNull()).select(
            "path", F.col("error").alias("reason")
        )
        for name, rows in (("scores", good), ("errors", bad)):
            writer = rows.write.mode("errorifexists")
            if file_format == "csv":
                writer.option("header", True).csv(f"{output}/{name}")
            else:
                writer.parquet(f"{output}/{name}")
        counts = dict(scored.groupBy(F.col("error").isNull()).count().collect())
    finally:
        scored.unpersist()
    return counts.get(True, 0), counts.get(False, 0)


# --- In the Python workers ---------------------------------------------------------------


def _score_batches(model_name, batch_size, frames):
    scorer = _scorer(model_name, batch_size)
    for frame in frames:
        yield score_frame(scorer, frame)


def _scorer(model_name, batch_size):
    """This worker's Scorer, loaded by its first task and kept for the next ones."""
    key = (model_name, batch_size)
    if key not in _SCORERS:
        from diqa_tf.inference import Scorer
        from diqa_tf.models import QualityModel
        from diqa_tf.resources import load_model

        _limit_threads(TaskContext.get().cpus())
        path = SparkFiles.get(model_name) if model_name else None
        _SCORERS[key] = Scorer(load_model(path, expected=QualityModel), batch_size)
        logger.info("loaded %s", path or "the shipped model")
    return _SCORERS[key]


def _limit_threads(cpus):
    """Give TensorFlow the task's CPUs, not the machine's.

    An executor runs one Python worker per concurrent task; by default each
    worker's TensorFlow would start a thread pool as large as the whole machine.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(cpus)
    except RuntimeError:  # the runtime has started (another model in this worker)
        pass


def score_frame(scorer, frame):
    """One batch of rows: `path` (and `content`) -> path, score (NaN: null), error."""
    paths = [str(p) for p in frame["path"]]
    if "content" in frame:
        scores, errors = scorer.score_contents(zip(paths, frame["content"]))
        reasons = {e.path: e.reason for e in errors}
    else:
        scores, reasons = _score_paths(scorer, paths)
    return pd.DataFrame(
        {
            "path": paths,
            "score": pd.Series([scores.get(p) for p in paths], dtype="float64"),
            "error": [reasons.get(p) for p in paths],
        }
    )


def _score_paths(scorer, paths):
    """Score files read by path here; ({path: score}, {path: reason})."""
    local = {path: _local_path(path) for path in paths}
    scores, errors = scorer.score_files([f for f in dict.fromkeys(local.values()) if f])
    failed = {e.path: e.reason for e in errors}
    return (
        {path: scores[found] for path, found in local.items() if found in scores},
        {path: failed.get(found, NOT_LOCAL)
         for path, found in local.items() if found not in scores},
    )


def _local_path(path):
    """The local file a path names (`file:/a/b%20c.jpg`, as binaryFile lists it, is
    /a/b c.jpg); None for another scheme (hdfs://, s3a://, ...)."""
    if path.startswith("file:"):
        return "/" + unquote(path[len("file:"):]).lstrip("/")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]+://", path):
        return None
    return path
