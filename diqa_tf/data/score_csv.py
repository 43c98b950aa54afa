"""Reading a CSV of scored images: `image,mos[,content][,reference][,distortion][,...]`.

The generic format for custom data. Paths are relative to the CSV's folder and may
not leave it (no absolute paths, no `..` above it), so a CSV names only files beside
or below it. The
optional `content` column names the scene (reference) of each image, for
content-disjoint splits; without it each image is its own content. The optional
`reference` column is the path of the pristine image (relative to the CSV) and
`distortion` its distortion type, as the IQA database loaders give them. CLIVE's
`is_training_image` column marks the 7 subject-training images.
"""

import csv
import dataclasses
import math
import os
from pathlib import Path

from diqa_tf.errors import DatasetError

SCORE_COLUMNS = ("mos", "dmos", "score")


@dataclasses.dataclass(frozen=True)
class ScoredImage:
    """One scored image. `reference`, `distortion` and `split` are None where unknown
    (authentic databases have no reference; only some databases fix a split)."""

    path: str
    score: float
    content: str
    reference: str | None = None
    distortion: str | None = None
    split: str | None = None


def read_score_csv(path, exclude_training_images=False):
    """Return the CSV's rows as ScoredImage records, checking every row.

    Raises DatasetError naming the file, the row and what is wrong.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot be read as a text CSV ({e})") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    score_column = next((c for c in SCORE_COLUMNS if c in columns), None)
    if "image" not in columns or score_column is None:
        raise DatasetError(
            f"{path}: needs the columns `image` and `mos` (or `dmos`/`score`); "
            f"found: {', '.join(columns) or 'no header'}"
        )
    root = path.parent
    records, seen = [], {}
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        name = row["image"]
        if not name:
            raise DatasetError(f"{path}, line {line}: empty `image`")
        try:
            score = float(row[score_column])
        except ValueError:
            raise DatasetError(
                f"{path}, line {line}: `{score_column}` is not a number: {row[score_column]!r}"
            ) from None
        if not math.isfinite(score):
            raise DatasetError(f"{path}, line {line}: `{score_column}` is {row[score_column]}")
        image_path = _inside(root, name, f"{path}, line {line}: `image`")
        key = os.path.normpath(name)  # `a.png` and `./a.png` are one image
        if key in seen:
            raise DatasetError(
                f"{path}, line {line}: duplicate image {name!r} (first on line {seen[key]})"
            )
        seen[key] = line
        if exclude_training_images and row.get("is_training_image", "0") in ("1", "true", "True"):
            continue
        if not image_path.is_file():
            raise DatasetError(f"{path}, line {line}: image not found: {image_path}")
        reference = row.get("reference") or None
        if reference is not None:
            reference = _inside(root, reference, f"{path}, line {line}: `reference`")
            if not reference.is_file():
                raise DatasetError(f"{path}, line {line}: reference not found: {reference}")
            reference = str(reference)
        records.append(
            ScoredImage(
                str(image_path),
                score,
                row.get("content") or name,
                reference=reference,
                distortion=row.get("distortion") or None,
            )
        )
    if not records:
        raise DatasetError(f"{path}: no images listed")
    return records


def _inside(root, name, where):
    """`root / name`, refusing an absolute path or one that climbs out of `root`."""
    if os.path.isabs(name):
        problem = "is an absolute path"
    elif os.path.normpath(name).split(os.sep)[0] == os.pardir:
        problem = "leads outside the CSV's folder"
    else:
        return root / name
    raise DatasetError(
        f"{where} {name!r} {problem}; paths must be relative to the CSV's folder "
        "and stay inside it"
    )
