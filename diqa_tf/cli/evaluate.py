"""`diqa evaluate`: SRCC, PLCC, KRCC, RMSE on a scored CSV or an IQA database."""

from diqa_tf.cli.common import EXIT_FAILED, EXIT_OK, add_model_option, error, positive_int, quality_model


def describe_scale(scale):
    direction = "higher" if scale.higher_is_better else "lower"
    return f"{scale.low:g}..{scale.high:g}, {direction} = better"


def run(args):
    from diqa_tf.data.databases import get_database
    from diqa_tf.evaluation.evaluate import evaluate_records, predictions_flipped

    if bool(args.database) != bool(args.root):
        args.usage_error("--database NAME and --root DIR go together")
    if args.csv:
        database, root = get_database("csv"), args.csv
    else:
        database, root = get_database(args.database), args.root
    records = database.load(root)
    model = quality_model(args.model)
    if args.database:
        print(f"{database.name}: {len(records)} images, scores {describe_scale(database.scale)}")
    if predictions_flipped(model, database.scale):
        print(
            f"predictions negated: the model's scores ({describe_scale(model.score_scale)}) "
            f"run the other way from {database.name}'s, so a good model has positive SRCC"
        )
    result, errors = evaluate_records(model, records, args.batch_size, scale=database.scale)
    for problem in errors:
        error(str(problem))
    print(f"SRCC  {result.srcc:.4f}")
    print(f"PLCC  {result.plcc:.4f}")
    print(f"KRCC  {result.krcc:.4f}")
    print(f"RMSE  {result.rmse:.4f}")
    print(f"N     {result.n}")
    if result.fit != "logistic":
        print(f"(PLCC and RMSE after a {result.fit} fit: the logistic fit did not converge)")
    return EXIT_FAILED if errors else EXIT_OK


def register(commands):
    from diqa_tf.data.databases import DATABASES

    evaluate = commands.add_parser(
        "evaluate", help="SRCC, PLCC, KRCC, RMSE on a scored CSV or an IQA database"
    )
    add_model_option(evaluate)
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", help="CSV with columns image,mos")
    source.add_argument("--database", metavar="NAME",
                        help="an IQA database in its original layout: "
                        f"{', '.join(DATABASES)} (with --root)")
    evaluate.add_argument("--root", metavar="DIR",
                          help="the database's folder as unpacked (with --database)")
    evaluate.add_argument("--batch-size", type=positive_int, default=8)
    evaluate.set_defaults(func=run, usage_error=evaluate.error)
