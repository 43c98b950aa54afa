"""`diqa benchmark`: the paper's protocol (repeated content-disjoint splits) on a database."""

import argparse
from pathlib import Path

from diqa_tf.cli.common import EXIT_OK, add_database_options, number, positive_int


def _train_ratio(text):
    value = number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _print_split(result, skipped):
    m = result["metrics"]
    if skipped:
        how = "finished before, kept"
    else:
        how = f"{sum(result['seconds'].values()):.0f} s"
    print(
        f"split {result['split']}: SRCC {m['srcc']:.4f}  PLCC {m['plcc']:.4f}  "
        f"KRCC {m['krcc']:.4f}  RMSE {m['rmse']:.4f}  ({result['train_images']} train / "
        f"{result['test_images']} test images; {how})",
        flush=True,
    )


def run(args):
    from diqa_tf.config import TrainingRecipe
    from diqa_tf.data.databases import get_database
    from diqa_tf.evaluation.folds import fold_count
    from diqa_tf.evaluation.protocol import ProtocolSettings, run_protocol

    database = get_database(args.database)
    recipe = TrainingRecipe.load(args.config) if args.config else TrainingRecipe()
    folds = str(Path(args.folds).expanduser().resolve()) if args.folds else None
    if folds and not Path(folds).is_file():
        args.usage_error(f"--folds: no such file: {args.folds}")
    splits = args.splits or (fold_count(folds) if folds else 10)
    settings = ProtocolSettings(
        database=database.name,
        root=str(Path(args.root).expanduser().resolve()),
        splits=splits,
        train_ratio=args.train_ratio,
        seed=args.seed,
        stage1=str(Path(args.stage1).expanduser().resolve()) if args.stage1 else None,
        folds=folds,
        ranking_references=tuple(
            str(Path(p).expanduser().resolve()) for p in args.ranking_references
        ),
    )
    if args.stage1 and not Path(settings.stage1).is_file():
        args.usage_error(f"--stage1: no such model file: {args.stage1}")
    output = Path(args.output)
    kind = f"folds of {args.folds}" if folds else "content-disjoint splits"
    print(f"{database.name}: {splits} {kind} -> {output}", flush=True)
    summary = run_protocol(
        database, settings, recipe, output, verbose=0 if args.quiet else 2,
        on_split=_print_split,
    )
    for statistic in ("median", "mean", "sd"):
        v = summary[statistic]
        print(f"{statistic:6s}   SRCC {v['srcc']:.4f}  PLCC {v['plcc']:.4f}  "
              f"KRCC {v['krcc']:.4f}  RMSE {v['rmse']:.4f}")
    print(f"results: {output / 'results.json'}, {output / 'results.md'}")
    return EXIT_OK


def register(commands):
    bench = commands.add_parser(
        "benchmark",
        help="train and test on repeated content-disjoint splits of a database",
        description="The paper's protocol: on each random content-disjoint split, train "
        "stage 1 (on the database's reference/distorted pairs, where it has references) and "
        "stage 2 on the training part, then score the test part. Reports each split and the "
        "median, mean and standard deviation. With --folds, k-fold cross-validation on the "
        "fixed folds of a file (`diqa folds`) instead. Run the same command again to resume: "
        "finished splits are kept.",
    )
    add_database_options(bench)
    bench.add_argument("--splits", type=positive_int, metavar="N",
                       help="how many splits (10), or how many of the --folds (all)")
    bench.add_argument("--train-ratio", type=_train_ratio, default=0.8, metavar="F",
                       help="fraction of the contents used for training (0.8)")
    bench.add_argument("--seed", type=int, default=0, metavar="S",
                       help="split i is drawn with seed S + i - 1 (0)")
    bench.add_argument("--folds", metavar="JSON",
                       help="k-fold cross-validation on the folds of this file (written by "
                       "`diqa folds`): fold i is split i's test side, the others train")
    bench.add_argument("--config", metavar="TOML", help="training recipe (TOML), e.g. configs/protocol_short.toml")
    bench.add_argument("--stage1", metavar="PATH",
                       help="a stage-1 model for every split instead of training one (default: "
                       "trained where the database has references, else the shipped one)")
    bench.add_argument("--ranking-references", nargs="+", default=[], metavar="DIR",
                       help="pristine photos for the recipe's stage2.reference_ranking_weight, "
                       "stage2.error_map_weight and stage2.ladder_weight, in every split")
    bench.add_argument("--output", required=True, metavar="DIR", help="folder for everything")
    bench.add_argument("--quiet", action="store_true", help="no line per training epoch")
    bench.set_defaults(func=run, usage_error=bench.error)
