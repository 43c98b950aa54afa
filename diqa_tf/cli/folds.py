"""`diqa folds`: write fixed k-fold cross-validation folds of a database to a file."""

from pathlib import Path

from diqa_tf.cli.common import EXIT_OK, add_database_options, positive_int


def run(args):
    from diqa_tf.config import TrainingRecipe
    from diqa_tf.data.databases import get_database
    from diqa_tf.evaluation.folds import write_folds
    from diqa_tf.evaluation.protocol import load_records

    if args.k < 2:
        args.usage_error(f"--k: must be at least 2, got {args.k}")
    database = get_database(args.database)
    root = Path(args.root).expanduser().resolve()
    records = load_records(database, root, TrainingRecipe())
    document = write_folds(args.output, database.name, root, records, args.k, args.seed)
    sizes = ", ".join(str(len(f)) for f in document["folds"])
    print(f"{database.name}: {document['images']} images in {args.k} content-disjoint folds "
          f"({sizes}; seed {args.seed}) -> {args.output}")
    return EXIT_OK


def register(commands):
    folds = commands.add_parser(
        "folds",
        help="write fixed content-disjoint cross-validation folds of a database",
        description="Deal a database's contents (reference images; each image on its own in "
        "databases without references) into K folds with a fixed seed, and write each "
        "fold's images to a JSON file, for `diqa benchmark --folds`.",
    )
    add_database_options(folds)
    folds.add_argument("--k", type=positive_int, default=5, metavar="K", help="how many folds (5)")
    folds.add_argument("--seed", type=int, default=0, metavar="S", help="the shuffle's seed (0)")
    folds.add_argument("--output", required=True, metavar="JSON", help="the folds file to write")
    folds.set_defaults(func=run, usage_error=folds.error)
