"""TID2013 (Ponomarenko et al. 2015) and TID2008 (2009): 3000 / 1700 images of 25 references.

MOS on 0..9 (higher = better) in `mos_with_names.txt` (`MOS name` per line, no header).
Distorted images are `iXX_YY_Z.bmp` (reference XX, distortion type YY, level Z); the
archives mix upper and lower case (I01.BMP beside i25.bmp), so names match case-blind.
"""

import functools
import re

from diqa_tf.config import ScoreScale
from diqa_tf.data.databases.base import Database, Folder, number, read_lines
from diqa_tf.data.score_csv import ScoredImage
from diqa_tf.errors import DatasetError

# The distortion types of the TID2013 readme; TID2008 has the first 17.
DISTORTIONS = (
    "additive Gaussian noise",
    "additive noise in color components",
    "spatially correlated noise",
    "masked noise",
    "high frequency noise",
    "impulse noise",
    "quantization noise",
    "Gaussian blur",
    "image denoising",
    "JPEG compression",
    "JPEG2000 compression",
    "JPEG transmission errors",
    "JPEG2000 transmission errors",
    "non eccentricity pattern noise",
    "local block-wise distortions",
    "mean shift",
    "contrast change",
    "change of color saturation",
    "multiplicative Gaussian noise",
    "comfort noise",
    "lossy compression of noisy images",
    "image color quantization with dither",
    "chromatic aberrations",
    "sparse sampling and reconstruction",
)
N_TYPES = {"tid2013": 24, "tid2008": 17}
_NAME = re.compile(r"i(\d\d)_(\d\d)_(\d)\.bmp", re.IGNORECASE)


def load(root, database="tid2013"):
    top = Folder(root, database)
    path = top.file("mos_with_names.txt")
    references, distorted = top.folder("reference_images"), top.folder("distorted_images")
    records = []
    for line, text in enumerate(read_lines(path, database), start=1):
        if not text.strip():
            continue
        where = f"{database}: {path}, line {line}"
        parts = text.split()
        match = _NAME.fullmatch(parts[-1]) if len(parts) == 2 else None
        if match is None:
            raise DatasetError(f"{where}: expected `MOS iXX_YY_Z.bmp`, got {text.strip()!r}")
        reference, kind = match[1], int(match[2])
        if not 1 <= kind <= N_TYPES[database]:
            raise DatasetError(
                f"{where}: distortion type {kind} is not one of 1..{N_TYPES[database]}"
            )
        records.append(
            ScoredImage(
                str(distorted.file(parts[1])),
                number(parts[0], where),
                content=f"I{reference}",
                reference=str(references.file(f"I{reference}.BMP")),
                distortion=DISTORTIONS[kind - 1],
            )
        )
    if not records:
        raise DatasetError(f"{database}: {path}: no images listed")
    return records


SCALE = ScoreScale(0.0, 9.0, higher_is_better=True)
TID2013 = Database("tid2013", SCALE, functools.partial(load, database="tid2013"), authentic=False)
TID2008 = Database("tid2008", SCALE, functools.partial(load, database="tid2008"), authentic=False)
