"""KADID-10k (Lin, Hosu and Saupe 2019): 10,125 images of 81 references, 25 distortion types.

`dmos.csv` (`dist_img,ref_img,dmos,var`): despite its name, `dmos` is a MOS on 1..5
(higher = better). Names are `IXX_YY_ZZ.png`: reference XX, distortion YY, level ZZ.
"""

import re

from diqa_tf.config import ScoreScale
from diqa_tf.data.databases.base import Database, Folder, number, read_csv
from diqa_tf.data.score_csv import ScoredImage
from diqa_tf.errors import DatasetError

NAME = "kadid10k"
# The distortion types of the KADID-10k readme, in their order (YY = 01..25).
DISTORTIONS = (
    "gaussian blur",
    "lens blur",
    "motion blur",
    "color diffusion",
    "color shift",
    "color quantization",
    "color saturation 1",
    "color saturation 2",
    "jpeg2000",
    "jpeg",
    "white noise",
    "white noise in color component",
    "impulse noise",
    "multiplicative noise",
    "denoise",
    "brighten",
    "darken",
    "mean shift",
    "jitter",
    "non-eccentricity patch",
    "pixelate",
    "quantization",
    "color block",
    "high sharpen",
    "contrast change",
)
_NAME = re.compile(r"I(\d\d)_(\d\d)_(\d\d)\.png", re.IGNORECASE)


def load(root):
    top = Folder(root, NAME)
    path = top.file("dmos.csv")
    images = top.folder("images")
    records = []
    for line, row in read_csv(path, ("dist_img", "ref_img", "dmos"), NAME):
        where = f"{NAME}: {path}, line {line}"
        match = _NAME.fullmatch(row["dist_img"])
        if match is None or not 1 <= int(match[2]) <= len(DISTORTIONS):
            raise DatasetError(f"{where}: expected a name IXX_YY_ZZ.png, got {row['dist_img']!r}")
        records.append(
            ScoredImage(
                str(images.file(row["dist_img"])),
                number(row["dmos"], where),
                content=row["ref_img"].rsplit(".", 1)[0],
                reference=str(images.file(row["ref_img"])),
                distortion=DISTORTIONS[int(match[2]) - 1],
            )
        )
    if not records:
        raise DatasetError(f"{NAME}: {path}: no images listed")
    return records


DATABASE = Database(NAME, ScoreScale(1.0, 5.0, higher_is_better=True), load, authentic=False)
