"""`diqa evaluate`: SRCC, PLCC, KRCC, RMSE on a scored CSV or an IQA database."""

from pathlib import Path

from diqa_tf.cli.common import EXIT_FAILED, EXIT_OK, add_model_option, error, positive_int, quality_model
from diqa_tf.cli.native_stderr import silence_native_stderr
from diqa_tf.cli.progress import Progress, add_quiet_option
from diqa_tf.errors import DatasetError


def describe_scale(scale):
    direction = "higher" if scale.higher_is_better else "lower"
    return f"{scale.low:g}..{scale.high:g}, {direction} = better"


def run(args):
    from diqa_tf.data.databases import get_database
    from diqa_tf.evaluation.evaluate import evaluate_records, predictions_flipped

    if bool(args.database) != bool(args.root):
        args.usage_error("--database NAME and --root DIR go together")
    if args.report:
        _check_report_folder(Path(args.report))
    if args.csv:
        database, root = get_database("csv"), args.csv
    else:
        database, root = get_database(args.database), args.root
    records = database.load(root)
    model = quality_model(args.model)
    if args.database:
        print(f"{database.name}: {len(records)} images, scores {describe_scale(database.scale)}")
    flipped = predictions_flipped(model, database.scale)
    if flipped:
        print(
            f"predictions negated: the model's scores ({describe_scale(model.score_scale)}) "
            f"run the other way from {database.name}'s, so a good model has positive SRCC"
        )

    def report_error(problem):
        with progress.paused():
            error(str(problem))

    with Progress(len(records), "scoring", quiet=args.quiet) as progress:
        try:
            evaluation = evaluate_records(model, records, args.batch_size, database.scale,
                                          on_done=progress.update, on_error=report_error)
        except DatasetError as e:
            raise DatasetError(f"{root}: {e}") from None
    result, scored, errors = evaluation.result, evaluation.records, evaluation.errors
    progress.summary("scored", len(scored), len(errors))
    print(f"SRCC  {result.srcc:.4f}")
    print(f"PLCC  {result.plcc:.4f}")
    print(f"KRCC  {result.krcc:.4f}")
    print(f"RMSE  {result.rmse:.4f}")
    print(f"N     {result.n}")
    if result.fit != "logistic":
        print(f"(PLCC and RMSE after a {result.fit} fit: the logistic fit did not converge)")
    if args.report:
        from diqa_tf.viz.report import ReportData, write_report

        data = ReportData(
            title=database.name if args.database else Path(args.csv).name,
            paths=[r.path for r in scored],
            targets=evaluation.targets,
            predictions=evaluation.predictions,
            scores=evaluation.scores,
            distortions=[r.distortion for r in scored],
            result=result,
            target_name="MOS" if database.scale.higher_is_better else "DMOS",
            flipped=flipped,
            failed=tuple(str(e) for e in errors),
        )
        print(f"report: {write_report(args.report, data)}")
    return EXIT_FAILED if errors else EXIT_OK


def _check_report_folder(folder):
    """Fail before scoring: no matplotlib, or a file where the report folder must be."""
    from diqa_tf.viz.figures import check_folder, pyplot

    pyplot()
    check_folder(folder)


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
    evaluate.add_argument("--report", metavar="DIR",
                          help="also write plots, predictions.csv and index.html into DIR "
                          "(needs matplotlib: pip install 'diqa-tf[viz]')")
    add_quiet_option(evaluate)
    evaluate.set_defaults(func=silence_native_stderr(run), usage_error=evaluate.error)
