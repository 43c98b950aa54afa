"""KonIQ-10k (Hosu et al. 2020): 10,073 authentically distorted photos, no references.

MOS on 1..5 (higher = better). `koniq10k_distributions_sets.csv` also gives the
official training/validation/test set of each image (kept as `split`); it is read
where present, else `koniq10k_scores_and_distributions.csv`.
"""

from diqa_tf.config import ScoreScale
from diqa_tf.data.databases.base import Database, Folder, number, read_csv
from diqa_tf.data.score_csv import ScoredImage
from diqa_tf.errors import DatasetError

NAME = "koniq10k"
SETS, SCORES = "koniq10k_distributions_sets.csv", "koniq10k_scores_and_distributions.csv"
IMAGE_FOLDERS = ("1024x768", "512x384")


def load(root, images=None):
    """`images`: the image folder, "1024x768" or "512x384" (None: the first present)."""
    top = Folder(root, NAME)
    if images is None:
        images = next((f for f in IMAGE_FOLDERS if top.get(f) is not None), IMAGE_FOLDERS[0])
    folder = top.folder(images)
    with_sets = top.get(SETS) is not None
    path = top.file(SETS if with_sets else SCORES)
    columns = ("image_name", "MOS", "set") if with_sets else ("image_name", "MOS")
    records = []
    for line, row in read_csv(path, columns, NAME):
        records.append(
            ScoredImage(
                str(folder.file(row["image_name"])),
                number(row["MOS"], f"{NAME}: {path}, line {line}"),
                content=row["image_name"],
                split=row["set"] if with_sets else None,
            )
        )
    if not records:
        raise DatasetError(f"{NAME}: {path}: no images listed")
    return records


DATABASE = Database(NAME, ScoreScale(1.0, 5.0, higher_is_better=True), load, authentic=True)
