"""The standard IQA databases in their original layouts (as unpacked), by name.

    database = get_database("tid2013")
    records = database.load("~/data/tid2013")   # ScoredImage records
    database.scale                              # ScoreScale(0, 9, higher_is_better=True)

Each declares its score range and direction: LIVE and CSIQ give DMOS (lower = better),
the others MOS. One module per database; `csv` is the generic CSV (root = the file).
"""

import difflib

from diqa_tf.data.databases import clive, csiq, csv_file, kadid10k, koniq10k, live, tid
from diqa_tf.data.databases.base import Database
from diqa_tf.errors import DatasetError

DATABASES = {
    d.name: d
    for d in (
        live.DATABASE,
        csiq.DATABASE,
        tid.TID2013,
        tid.TID2008,
        kadid10k.DATABASE,
        koniq10k.DATABASE,
        clive.DATABASE,
        csv_file.DATABASE,
    )
}


def get_database(name) -> Database:
    """The database called `name` (any case); unknown names raise with a hint."""
    key = str(name).strip().lower()
    if key in DATABASES:
        return DATABASES[key]
    close = difflib.get_close_matches(key, DATABASES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise DatasetError(
        f"unknown database {name!r}.{hint} Known: {', '.join(DATABASES)}"
    )


__all__ = ["DATABASES", "Database", "get_database"]
