"""LIVE In the Wild Image Quality Challenge (Ghadiyaram and Bovik 2016): 1,162 photos.

MOS on 0..100 (higher = better) in Data/*.mat. The first 7 entries are the images that
trained the subjects (in Images/trainingImages/); papers leave them out, and so do we
unless asked.
"""

from diqa_tf.config import ScoreScale
from diqa_tf.data.databases.base import Database, Folder, check_lengths, load_mat
from diqa_tf.data.score_csv import ScoredImage

NAME = "clive"
N_TRAINING_IMAGES = 7


def load(root, include_training_images=False):
    top = Folder(root, NAME)
    data, images = top.folder("Data"), top.folder("Images")
    (names,) = load_mat(data.file("AllImages_release.mat"), ("AllImages_release",), NAME)
    (mos,) = load_mat(data.file("AllMOS_release.mat"), ("AllMOS_release",), NAME)
    check_lengths(NAME, AllImages_release=len(names), AllMOS_release=len(mos))
    training = images.folder("trainingImages") if include_training_images else None
    records = []
    for i, (name, score) in enumerate(zip(names, mos)):
        name = str(name).strip()
        if i < N_TRAINING_IMAGES:
            if training is None:
                continue
            path = training.file(name)
        else:
            path = images.file(name)
        records.append(ScoredImage(str(path), float(score), content=name))
    return records


DATABASE = Database(NAME, ScoreScale(0.0, 100.0, higher_is_better=True), load, authentic=True)
