"""`diqa spark-score`: score every image matching a glob on Apache Spark, into CSV or Parquet.

The driver finds the files as `diqa predict` does (files, folders, globs with **);
the executors read and score them (diqa_tf.spark), so every executor must see the
files at the same absolute paths: one machine, or a mount they all share.
docs/spark.md has the commands for a cluster, and the Python route for HDFS/S3.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from diqa_tf.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    error,
    positive_int,
    quality_model,
    whole_number,
)
from diqa_tf.cli.progress import summary_line
from diqa_tf.errors import DIQAError, first_line

MIN_JAVA = 17  # Spark 4's minimum
INSTALL_JAVA = "install one, e.g. `apt-get install openjdk-17-jre-headless`"


def run(args):
    try:
        import pyarrow  # noqa: F401  (mapInPandas needs it; Spark would fail later)

        import diqa_tf.spark  # noqa: F401  (pyspark, pandas)
    except ImportError as e:
        raise DIQAError(
            f"spark-score needs PySpark ({e.name} is not installed): pip install 'diqa-tf[spark]'"
        ) from None
    paths, problems = _find_inputs(args.input)
    if args.model:
        quality_model(args.model)  # fail here, not on every executor
    _check_output(args.output)
    _check_master(args.master)
    _check_java()
    for item, reason in problems:
        error(f"{item}: {reason}")
    _quiet_workers()
    log = _log_file()
    try:
        done, failed, seconds = _score(args, paths, log)
    except DIQAError as e:
        raise DIQAError(f"{e}; Spark's log: {log.name}" if log else str(e)) from None
    finally:
        if log:
            log.close()
    if log:
        os.unlink(log.name)
    if failed:
        error(f"{failed} images could not be scored; see {args.output}/errors")
    failed += len(problems)
    print(f"{summary_line('scored', done, failed, seconds)}; wrote {args.output}/scores",
          file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _score(args, paths, log):
    """Start Spark, score `paths`, write the outputs, stop Spark: (scored, failed, seconds)."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    from diqa_tf import spark as diqa_spark

    conf = SparkConf().setMaster(args.master).setAll(_conf(args).items())
    try:
        gateway = launch_gateway(conf, {"stdout": log, "stderr": log}) if log else None
        spark = SparkSession(SparkContext(conf=conf, gateway=gateway))
    except Exception as e:  # Py4J and Spark raise many types; the user needs one line
        reason = _launch_reason(log) or spark_reason(e)
        raise DIQAError(f"--master {args.master}: Spark did not start ({reason})") from None
    start = time.time()
    try:
        partitions = args.partitions or min(len(paths), 4 * spark.sparkContext.defaultParallelism)
        rows = spark.sparkContext.parallelize([(p,) for p in paths], partitions)
        scored = diqa_spark.score_images(rows.toDF("path string"), args.model, args.batch_size)
        done, failed = diqa_spark.write_scores(scored, args.output, args.format)
    except Exception as e:
        raise DIQAError(f"Spark job failed: {spark_reason(e)}") from None
    finally:
        spark.stop()
    return done, failed, time.time() - start


def _log_file():
    """Where Spark's JVM and local Python workers write (their stack traces and
    start-up lines would bury the command's own); None with DIQA_TF_LOGS=1."""
    if os.environ.get("DIQA_TF_LOGS"):
        return None
    return tempfile.NamedTemporaryFile("w", prefix="diqa-spark-", suffix=".log", delete=False)


def _launch_reason(log):
    """Why spark-submit exited before Spark started, from its log ("Master must ...")."""
    if not log:
        return None
    log.flush()
    found = re.search(r'Exception in thread "main" [\w.$]+: (.+)', Path(log.name).read_text())
    return found.group(1).strip() if found else None


def _find_inputs(inputs):
    """Absolute image paths (executors run in other folders) and the inputs that matched
    nothing; refuses inputs that match no image at all."""
    from diqa_tf.data import files

    paths, problems = files.find_images(inputs)
    if not paths:
        raise DIQAError("; ".join(f"{item}: {reason}" for item, reason in problems))
    return [os.path.abspath(p) for p in paths], problems


def _check_output(output):
    """Refuse an output that holds results already (Spark would fail after scoring)."""
    if "://" in output:
        return  # another filesystem: Spark checks
    for name in ("scores", "errors"):
        if os.path.exists(os.path.join(output, name)):
            raise DIQAError(
                f"{os.path.join(output, name)}: already exists; choose another --output"
            )


def _check_java():
    """Find the Java that Spark's launcher will run (JAVA_HOME, else PATH); refuse none
    or one older than MIN_JAVA, which would fail with a Java stack trace."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home, "bin", "java")) if home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        where = f"JAVA_HOME={home} has no bin/java" if home else "no `java` on PATH"
        raise DIQAError(f"spark-score needs Java {MIN_JAVA} or later ({where}); {INSTALL_JAVA}")
    try:
        shown = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DIQAError(f"{java}: cannot run ({first_line(e)}); {INSTALL_JAVA}") from None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown.stderr + shown.stdout)
    if not found:
        raise DIQAError(f"{java}: `java -version` names no version; {INSTALL_JAVA}")
    major = int(found.group(1)) if found.group(1) != "1" else int(found.group(2) or 0)
    if major < MIN_JAVA:
        raise DIQAError(f"{java}: Java {major}; Spark 4 needs Java {MIN_JAVA} or later")


def _check_master(master):
    """Refuse a spark:// master that nobody answers at (Spark would retry for a minute)."""
    if not master.startswith("spark://"):
        return
    reason = "no host:port"
    for address in master[len("spark://"):].split(","):  # HA: several masters
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=10).close()
            return
        except (OSError, ValueError) as e:
            reason = f"{address}: {getattr(e, 'strerror', None) or e}"
    raise DIQAError(f"--master {master}: cannot reach the Spark master ({reason})")


def _quiet_workers():
    """Local Python workers inherit this environment: fewer TF lines in Spark's log.

    Also runs them with this Python (the one with diqa-tf), unless PYSPARK_PYTHON says
    otherwise; on a cluster that path must exist on every worker (docs/spark.md).
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if not os.environ.get("DIQA_TF_LOGS"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _conf(args):
    """Spark settings: ours (quiet, the app's name), then the user's --conf."""
    conf = {
        "spark.app.name": "diqa spark-score",
        "spark.ui.showConsoleProgress": str(_is_terminal()).lower(),
        "spark.executorEnv.TF_CPP_MIN_LOG_LEVEL": "2",
    }
    conf.update(args.conf)
    return conf


def _is_terminal():
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def spark_reason(error):
    """One line from a Spark failure: a Python worker's exception, or the Java one's message.

    Spark's errors carry both stack traces (Java and Python) in their text.
    """
    text = str(error)
    if "Traceback (most recent call last)" in text:
        tail = text[text.rindex("Traceback (most recent call last)"):].splitlines()
        raised = [line for line in tail[1:] if line.strip() and not line[0].isspace()]
        if raised:
            return raised[0].strip()
    for line in text.splitlines():
        found = re.match(r"^:?\s*[\w.$]+(?:Exception|Error): (.+)", line)
        if found:
            return found.group(1).strip()
    return first_line(error)


def _setting(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE, got {text!r}")
    return key.strip(), value


def _partition_count(text):
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (4 per core) or more, got {value}")
    return value


def register(commands):
    parser = commands.add_parser(
        "spark-score",
        help="score images on Apache Spark (local or a cluster)",
        epilog="Every executor must read the files at the same absolute paths; see docs/spark.md.",
    )
    parser.add_argument("--input", required=True, nargs="+", metavar="INPUT",
                        help="image files, folders or globs (** for any depth), as `diqa predict`")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="writes DIR/scores (path,score) and DIR/errors (path,reason)")
    parser.add_argument("--model", help="a DIQA .keras model, shipped to the executors "
                        "(default: the shipped model of each executor's diqa-tf)")
    parser.add_argument("--master", default="local[*]",
                        help="Spark master URL: local[*] (default), local[N], "
                        "spark://HOST:PORT, ...")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv",
                        help="output files: CSV (scores with 4 decimals) or Parquet (doubles)")
    parser.add_argument("--batch-size", type=positive_int, default=8,
                        help="images per model call; only images of one size share a batch")
    parser.add_argument("--partitions", type=_partition_count, default=0,
                        help="tasks to split the images into (default 0: 4 per core)")
    parser.add_argument("--conf", type=_setting, action="append", default=[],
                        metavar="KEY=VALUE", help="a Spark setting, as spark-submit's --conf")
    parser.set_defaults(func=run)
