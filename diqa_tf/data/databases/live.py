"""LIVE IQA Release 2 (Sheikh, Sabir and Bovik 2006): 779 distorted images of 29 references.

The score files list all 982 entries folder by folder (jp2k, jpeg, wn, gblur, fastfading,
each img1..imgN, N = the lines of its info.txt). Entries with `orgs == 1` are copies of
the references, scored about 0: left out. DMOS, lower = better.
"""

from diqa_tf.config import ScoreScale
from diqa_tf.data.databases.base import Database, Folder, check_lengths, load_mat, read_lines
from diqa_tf.data.score_csv import ScoredImage

NAME = "live"
FOLDERS = ("jp2k", "jpeg", "wn", "gblur", "fastfading")


def _count(folder):
    """How many images `info.txt` lists (`<ref> <dist> <param>` per line)."""
    lines = read_lines(folder.file("info.txt"), NAME)
    return sum(1 for line in lines if len(line.split()) >= 2)


def load(root, realigned=None):
    """`realigned`: use the realigned DMOS of dmos_realigned.mat (None: where present)."""
    top = Folder(root, NAME)
    if realigned is None:
        realigned = top.get("dmos_realigned.mat") is not None
    if realigned:
        dmos, orgs = load_mat(top.file("dmos_realigned.mat"), ("dmos_new", "orgs"), NAME)
    else:
        dmos, orgs = load_mat(top.file("dmos.mat"), ("dmos", "orgs"), NAME)
    (refnames,) = load_mat(top.file("refnames_all.mat"), ("refnames_all",), NAME)
    folders = {kind: top.folder(kind) for kind in FOLDERS}
    entries = [(kind, k) for kind in FOLDERS for k in range(1, _count(folders[kind]) + 1)]
    check_lengths(
        NAME, dmos=len(dmos), orgs=len(orgs), refnames_all=len(refnames), info_txt=len(entries)
    )
    references = top.folder("refimgs")
    records = []
    for (kind, k), score, original, reference in zip(entries, dmos, orgs, refnames):
        if int(original) == 1:
            continue
        reference = str(reference).strip()
        records.append(
            ScoredImage(
                str(folders[kind].file(f"img{k}.bmp")),
                float(score),
                content=reference,
                reference=str(references.file(reference)),
                distortion=kind,
            )
        )
    return records


DATABASE = Database(NAME, ScoreScale(0.0, 100.0, higher_is_better=False), load, authentic=False)
