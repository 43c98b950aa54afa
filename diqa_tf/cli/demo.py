"""`diqa demo`: the shipped model on scikit-image photos at growing distortion."""

import time
from pathlib import Path

from diqa_tf.cli.common import EXIT_OK, add_model_option, quality_model, write_atomic


def _print_table(title, table):
    print(title)
    print(f"{'distortion':<15}{'original':>9}" + "".join(f"{'level ' + str(i):>9}" for i in range(5)))
    for kind, row in table.items():
        print(f"{kind:<15}" + "".join(f"{v:9.{1 if abs(max(row)) >= 10 else 3}f}" for v in row))


def run(args):
    from diqa_tf import demo
    from diqa_tf.explain import Explainer
    from diqa_tf.models import ErrorMapModel
    from diqa_tf.resources import DEFAULT_STAGE1_MODEL, default_model_path, load_model
    from diqa_tf.viz.error_maps import save_map_grid
    from diqa_tf.viz.figures import pyplot

    pyplot()  # a missing [viz] extra fails before any work
    model = quality_model(args.model)
    stage1_path = Path(args.stage1 or default_model_path(DEFAULT_STAGE1_MODEL))
    stage1 = load_model(stage1_path, expected=ErrorMapModel)
    start = time.time()
    items, outputs = demo.run_demo(Explainer(model, stage1))
    photos = f"{len(demo.DEMO_PHOTOS)} scikit-image photos ({', '.join(demo.DEMO_PHOTOS)})"
    _print_table(f"Mean predicted quality of {photos}; higher = better",
                 demo.mean_table(items, outputs, "score"))
    _print_table(f"Mean predicted objective error (stage-1 model {stage1_path.name}); "
                 "higher = more error", demo.mean_table(items, outputs, "error_map"))
    output = Path(args.output)
    rows = []
    for (name, kind, level, image), out in zip(items, outputs):
        shown = level in (1, 3) or (level is None and kind == demo.DEMO_DISTORTIONS[0])
        if name == demo.DEMO_PHOTOS[0] and shown:
            label = f"{name}, {kind} level {level}" if level is not None else f"{name}, original"
            rows.append({**out, "image": image, "label": f"{label}: score {out['score']:.1f}"})
    save_map_grid(
        rows, output / "demo_maps.png",
        title=f"DIQA: objective error maps from the stage-1 model ({stage1_path.name}), "
        "perceptual quality maps from the quality model",
        error_title="objective error map, stage-1 model\n(higher = more error)",
    )
    write_atomic(
        output / "demo_scores.csv",
        "photo,distortion,level,score,mean_error\n"
        + "".join(
            f"{n},{k},{'' if l is None else l},{o['score']:.4f},{o['error_map'].mean():.4f}\n"
            for (n, k, l, _), o in zip(items, outputs)
        ),
    )
    print(f"wrote {output / 'demo_maps.png'} and {output / 'demo_scores.csv'} "
          f"({len(items)} images in {time.time() - start:.0f} s)")
    return EXIT_OK


def register(commands):
    demo = commands.add_parser("demo", help="score scikit-image photos at growing distortion")
    add_model_option(demo)
    demo.add_argument("--stage1", metavar="PATH",
                      help="the stage-1 .keras model whose objective error maps are drawn "
                      "(default: the shipped diqa_stage1.keras)")
    demo.add_argument("--output", default="demo_output", help="folder for the picture and CSV")
    demo.set_defaults(func=run)
