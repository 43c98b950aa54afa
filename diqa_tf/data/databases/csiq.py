"""CSIQ (Larson and Chandler 2010): 866 distorted images of 30 references.

DMOS on 0..1 (lower = better) in `csiq.DMOS.xlsx`, sheet `all_by_image`, header on row 4.
Files are `dst_imgs/<folder>/<image>.<TOKEN>.<level>.png`; the token's case differs by
type (AWGN, jpeg2000), so names match case-blind.
"""

import zipfile

from diqa_tf.config import ScoreScale
from diqa_tf.data.databases.base import Database, Folder, number
from diqa_tf.data.score_csv import ScoredImage
from diqa_tf.errors import DatasetError

NAME = "csiq"
SCORES, SHEET = "csiq.DMOS.xlsx", "all_by_image"
COLUMNS = ("image", "dst_type", "dst_lev", "dmos")
# dst_type in the sheet -> (folder under dst_imgs/, token in the file name)
TYPES = {
    "noise": ("awgn", "AWGN"),
    "jpeg": ("jpeg", "JPEG"),
    "jpeg 2000": ("jpeg2000", "jpeg2000"),
    "fnoise": ("fnoise", "fnoise"),
    "blur": ("blur", "BLUR"),
    "contrast": ("contrast", "contrast"),
}


def _text(value):
    """A cell as text: the sheet stores names like 1600 as numbers."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value).strip()


def _read_sheet(path):
    """(row number, {column: cell}) for each scored row of the sheet."""
    try:
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException
    except ImportError:
        raise DatasetError(f"{NAME}: reading {path} needs openpyxl: pip install openpyxl") from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, InvalidFileException) as e:
        raise DatasetError(f"{NAME}: {path} cannot be read as a workbook ({e})") from None
    try:
        if SHEET not in book.sheetnames:
            raise DatasetError(
                f"{NAME}: {path} has no sheet `{SHEET}` (found: {', '.join(book.sheetnames)})"
            )
        rows = list(book[SHEET].iter_rows(values_only=True))
    finally:
        book.close()
    # The header is on row 4 in the release; look a little further in case of edits.
    for top, row in enumerate(rows[:10]):
        names = [_text(cell).lower() for cell in row]
        if all(c in names for c in COLUMNS):
            break
    else:
        raise DatasetError(
            f"{NAME}: {path}, sheet {SHEET}: no header row with {', '.join(COLUMNS)}"
        )
    index = {c: names.index(c) for c in COLUMNS}
    return [
        (line, {c: row[i] if i < len(row) else None for c, i in index.items()})
        for line, row in enumerate(rows[top + 1 :], start=top + 2)
        if any(cell is not None for cell in row)
    ]


def load(root):
    top = Folder(root, NAME)
    path = top.file(SCORES)
    references, distorted = top.folder("src_imgs"), top.folder("dst_imgs")
    folders = {}
    records = []
    for row_number, row in _read_sheet(path):
        where = f"{NAME}: {path}, row {row_number}"
        image, kind = _text(row["image"]), _text(row["dst_type"]).lower()
        if kind not in TYPES:
            raise DatasetError(f"{where}: unknown dst_type {kind!r} (known: {', '.join(TYPES)})")
        folder, token = TYPES[kind]
        if folder not in folders:
            folders[folder] = distorted.folder(folder)
        level = int(number(row["dst_lev"], where))
        records.append(
            ScoredImage(
                str(folders[folder].file(f"{image}.{token}.{level}.png")),
                number(row["dmos"], where),
                content=image,
                reference=str(references.file(f"{image}.png")),
                distortion=folder,
            )
        )
    if not records:
        raise DatasetError(f"{NAME}: {path}: no scored rows in sheet {SHEET}")
    return records


DATABASE = Database(NAME, ScoreScale(0.0, 1.0, higher_is_better=False), load, authentic=False)
