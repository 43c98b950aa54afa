"""`diqa demo`: the shipped model on scikit-image photos at growing distortion."""

import time
from pathlib import Path

from diqa_tf.cli.common import EXIT_OK, add_model_option, quality_model, write_atomic


def run(args):
    from diqa_tf import demo
    from diqa_tf.inference import Scorer
    from diqa_tf.viz.error_maps import save_map_grid

    model = quality_model(args.model)
    start = time.time()
    items, outputs = demo.run_demo(Scorer(model))
    table = demo.score_table(items, outputs)
    print(f"Mean predicted quality of {len(demo.DEMO_PHOTOS)} scikit-image photos "
          f"({', '.join(demo.DEMO_PHOTOS)}); higher = better")
    header = f"{'distortion':<15}{'original':>9}" + "".join(f"{'level ' + str(i):>9}" for i in range(5))
    print(header)
    for kind, row in table.items():
        print(f"{kind:<15}" + "".join(f"{v:9.1f}" for v in row))
    output = Path(args.output)
    rows = []
    for (name, kind, level, image), out in zip(items, outputs):
        shown = level in (1, 3) or (level is None and kind == demo.DEMO_DISTORTIONS[0])
        if name == demo.DEMO_PHOTOS[0] and shown:
            label = f"{name}, {kind} level {level}" if level is not None else f"{name}, original"
            rows.append({**out, "image": image, "label": f"{label}: score {out['score']:.1f}"})
    save_map_grid(rows, output / "demo_maps.png", title="DIQA: predicted maps")
    write_atomic(
        output / "demo_scores.csv",
        "photo,distortion,level,score\n"
        + "".join(
            f"{n},{k},{'' if l is None else l},{o['score']:.4f}\n"
            for (n, k, l, _), o in zip(items, outputs)
        ),
    )
    print(f"wrote {output / 'demo_maps.png'} and {output / 'demo_scores.csv'} "
          f"({len(items)} images in {time.time() - start:.0f} s)")
    return EXIT_OK


def register(commands):
    demo = commands.add_parser("demo", help="score scikit-image photos at growing distortion")
    add_model_option(demo)
    demo.add_argument("--output", default="demo_output", help="folder for the picture and CSV")
    demo.set_defaults(func=run)
