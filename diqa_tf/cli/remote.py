"""`diqa remote`: score image files on a TF Serving server (gRPC or REST).

Writes exactly what `diqa predict` writes (CSV or JSON of path,score), with the same
exit codes; the model runs on the server (`diqa export` + tensorflow/serving).
"""

import argparse
import sys
import time

from diqa_tf.cli.common import EXIT_FAILED, EXIT_OK, error, output_file, positive_int
from diqa_tf.cli.predict import write_scores


def positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value:g}")
    return value


def _client(args):
    from diqa_tf.serving import GrpcClient, RestClient

    options = dict(
        model_name=args.model_name, version=args.version, signature=args.signature,
        batch_size=args.batch_size, timeout=args.timeout, retries=args.retries,
    )
    if args.grpc:
        return GrpcClient(args.grpc, **options)
    return RestClient(args.rest, **options)


def run(args):
    from diqa_tf.data import files

    paths, problems = files.find_images(args.inputs)
    for item, reason in problems:
        error(f"{item}: {reason}")
    start = time.time()
    with _client(args) as client:
        client.check_signature()
        scores, errors = client.score_files(paths)
    rows = write_scores(paths, scores, errors, args.output)
    seconds = time.time() - start
    failed = len(errors) + len(problems)
    print(
        f"scored {len(rows)} images on {client.address}, {failed} failed, in {seconds:.1f} s "
        f"({len(rows) / max(seconds, 1e-9):.1f} images/s)",
        file=sys.stderr,
    )
    return EXIT_FAILED if failed else EXIT_OK


def register(commands):
    remote = commands.add_parser(
        "remote", help="score image files on a TF Serving server (CSV path,score)"
    )
    remote.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    server = remote.add_mutually_exclusive_group(required=True)
    server.add_argument("--grpc", metavar="HOST:PORT", help="TF Serving gRPC address (port 8500)")
    server.add_argument("--rest", metavar="URL", help="TF Serving REST URL (http://HOST:8501)")
    remote.add_argument("--model-name", default="diqa", metavar="NAME",
                        help="served model name (default: diqa)")
    remote.add_argument("--version", type=positive_int, metavar="N",
                        help="model version (default: the server's latest)")
    remote.add_argument("--signature", default="serving_default", metavar="NAME",
                        help="signature taking image_bytes (default: serving_default)")
    remote.add_argument("--batch-size", type=positive_int, default=8, metavar="N",
                        help="images per request (default: 8)")
    remote.add_argument("--timeout", type=positive_seconds, default=30.0, metavar="SECONDS",
                        help="seconds to wait for each answer (default: 30)")
    remote.add_argument("--retries", type=int, choices=range(0, 11), default=3, metavar="0-10",
                        help="retries when the server is unavailable, waiting 0.5 s, 1 s, ... "
                             "(default: 3)")
    remote.add_argument("--output", type=output_file, metavar="FILE",
                        help="write to FILE.csv or FILE.json instead of standard output")
    remote.set_defaults(func=run)
