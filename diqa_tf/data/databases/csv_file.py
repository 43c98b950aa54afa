"""Any CSV in the generic format of diqa_tf.data.score_csv; the root is the CSV file."""

from diqa_tf.config import ScoreScale
from diqa_tf.data.databases.base import Database
from diqa_tf.data.score_csv import read_score_csv


def database(scale=ScoreScale(), authentic=False):
    """The `csv` database with your scores' range and direction.

    The default, 0..100 with higher = better, is what `diqa evaluate --csv` assumes.
    """
    return Database("csv", scale, read_score_csv, authentic=authentic)


DATABASE = database()
