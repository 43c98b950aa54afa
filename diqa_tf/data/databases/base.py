"""What the database loaders share: the Database record and case-blind file lookup.

The official archives are not consistent about case (TID's `I01.BMP` beside `i25.bmp`,
CSIQ's `AWGN` beside `jpeg2000`), so files are found by their lower-cased names. Every
missing file or folder raises DatasetError naming it and the database.
"""

import csv
import dataclasses
import math
from pathlib import Path
from typing import Callable

import numpy as np

from diqa_tf.config import ScoreScale
from diqa_tf.data.score_csv import ScoredImage
from diqa_tf.errors import DatasetError


@dataclasses.dataclass(frozen=True)
class Database:
    """A subjectively scored database: its score range and direction, and its loader.

    `load(root, **options)` returns the database's ScoredImage records. `authentic`:
    camera photos with real-world distortions, no references or distortion types.
    """

    name: str
    scale: ScoreScale
    load: Callable[..., list[ScoredImage]]
    authentic: bool


class Folder:
    """A folder whose entries are looked up by name, ignoring case."""

    def __init__(self, path, database):
        self.path = Path(path).expanduser()
        self.database = database
        if not self.path.is_dir():
            raise DatasetError(f"{database}: missing folder {self.path}")
        self._entries = {p.name.lower(): p for p in self.path.iterdir()}

    def get(self, name):
        """The entry called `name` (in any case), or None."""
        return self._entries.get(name.lower())

    def file(self, name) -> Path:
        found = self.get(name)
        if found is None or not found.is_file():
            raise DatasetError(f"{self.database}: missing file {self.path / name}")
        return found

    def folder(self, name) -> "Folder":
        found = self.get(name)
        return Folder(self.path / name if found is None else found, self.database)


def number(text, where):
    """`text` as a finite float, else DatasetError naming `where`."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise DatasetError(f"{where}: score is {value}")
    return value


def read_lines(path, database):
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{database}: {path} cannot be read as text ({e})") from None


def read_csv(path, columns, database):
    """(line number, row) of each row of a CSV that must have `columns`."""
    reader = csv.DictReader(read_lines(path, database))
    found = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in columns if c not in found]
    if missing:
        raise DatasetError(
            f"{database}: {path} needs the columns {', '.join(columns)}; "
            f"missing: {', '.join(missing)}"
        )
    return [
        (line, {(k or "").strip(): (v or "").strip() for k, v in row.items()})
        for line, row in enumerate(reader, start=2)
    ]


def load_mat(path, names, database):
    """The named variables of a MATLAB file, each as a flat array (cells of str too)."""
    from scipy import io

    try:
        contents = io.loadmat(path, squeeze_me=True)
    except (OSError, ValueError, NotImplementedError, io.matlab.MatReadError) as e:
        raise DatasetError(f"{database}: {path} cannot be read as a MATLAB file ({e})") from None
    for name in names:
        if name not in contents:
            found = ", ".join(k for k in contents if not k.startswith("__"))
            raise DatasetError(f"{database}: {path} has no variable `{name}` (found: {found})")
    return [np.atleast_1d(contents[name]).ravel() for name in names]


def check_lengths(database, **lengths):
    """Raise unless the score files list as many entries as each other (names say where)."""
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{where} {n}" for where, n in lengths.items())
        raise DatasetError(
            f"{database}: the score files disagree on the number of images: {listed}"
        )
