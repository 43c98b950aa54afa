"""The `diqa evaluate --report` folder: plots, a CSV of predictions and one HTML page.

Files: `scatter.png` (predictions against subjective scores, with the fitted logistic
and SRCC/PLCC/KRCC/RMSE in the title), `distortions.png` (SRCC and PLCC per
distortion type, where the records have types), `predictions.csv`, and `index.html`,
which embeds the pictures as data URIs (one file that can be mailed or archived) and
links the files beside it. Every file is written atomically; index.html comes last.
"""

import base64
import csv
import dataclasses
import html
import io
import warnings
from pathlib import Path

import numpy as np

from diqa_tf.atomic import write_atomic
from diqa_tf.evaluation.metrics import correlations, fit_logistic
from diqa_tf.viz.figures import pyplot, save_figure

# Fewer images of a type than this give no meaningful per-type correlation.
MIN_PER_TYPE = 3


@dataclasses.dataclass(frozen=True)
class ReportData:
    """What the report shows.

    `predictions` are on the correlation's direction (negated where the database's
    scores run the other way from the model's, `flipped`); `scores` are the model's
    own outputs, as `predictions.csv` lists them.
    """

    title: str
    paths: list
    targets: np.ndarray
    predictions: np.ndarray
    scores: np.ndarray
    distortions: list
    result: object  # diqa_tf.evaluation.metrics.Correlations
    target_name: str = "MOS"
    flipped: bool = False
    failed: tuple = ()  # error messages of the images that could not be scored


def per_distortion(data):
    """{type: Correlations} for each distortion type with at least MIN_PER_TYPE images."""
    groups = {}
    for i, kind in enumerate(data.distortions):
        if kind:
            groups.setdefault(kind, []).append(i)
    table = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a type of constant scores: NaN, shown as such
        for kind in sorted(groups):
            index = groups[kind]
            if len(index) >= MIN_PER_TYPE:
                table[kind] = correlations(data.predictions[index], data.targets[index])
    return table


def write_report(folder, data):
    """Write the report's files into `folder`; return the path of index.html."""
    plt = pyplot()
    folder = Path(folder)
    pictures = {"scatter.png": _scatter(plt, data)}
    types = per_distortion(data)
    if types:
        pictures["distortions.png"] = _distortion_bars(plt, types)
    for name, fig in pictures.items():
        save_figure(fig, folder / name, dpi=100)
    write_atomic(folder / "predictions.csv", _predictions_csv(data))
    return write_atomic(folder / "index.html", _page(data, types, folder, list(pictures)))


def _scatter(plt, data):
    r = data.result
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    ax.scatter(data.predictions, data.targets, s=12, alpha=0.6, edgecolors="none")
    mapping, fit = fit_logistic(data.predictions, data.targets)
    x = np.linspace(data.predictions.min(), data.predictions.max(), 200)
    ax.plot(x, mapping(x), color="tab:red", label=f"fitted {fit}")
    ax.set_xlabel(("negated " if data.flipped else "") + "predicted score")
    ax.set_ylabel(data.target_name)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    ax.set_title(f"{data.title} (N={r.n})\nSRCC {r.srcc:.3f}  PLCC {r.plcc:.3f}  "
                 f"KRCC {r.krcc:.3f}  RMSE {r.rmse:.2f}", fontsize=10)
    fig.tight_layout()
    return fig


def _distortion_bars(plt, types):
    names = list(types)
    fig, ax = plt.subplots(figsize=(max(6.4, 0.55 * len(names) + 2), 4.2))
    x = np.arange(len(names))
    for offset, metric in ((-0.2, "srcc"), (0.2, "plcc")):
        ax.bar(x + offset, [getattr(types[n], metric) for n in names], 0.4,
               label=metric.upper())
    ax.set_xticks(x, [f"{n}\n(N={types[n].n})" for n in names],
                  rotation=45 if len(names) > 8 else 0, fontsize=8)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylim(min(-0.1, ax.get_ylim()[0]), 1.0)
    ax.set_ylabel("correlation")
    ax.set_title("per distortion type")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _predictions_csv(data):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    has_types = any(data.distortions)
    writer.writerow(["image", data.target_name.lower(), "score"]
                    + (["distortion"] if has_types else []))
    for path, target, score, kind in zip(data.paths, data.targets, data.scores,
                                         data.distortions):
        writer.writerow([path, f"{target:g}", f"{score:.4f}"] + ([kind or ""] if has_types else []))
    return buffer.getvalue()


def _page(data, types, folder, pictures):
    e = html.escape
    r = data.result
    rows = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in (
        ("SRCC", f"{r.srcc:.4f}"), ("PLCC", f"{r.plcc:.4f}"), ("KRCC", f"{r.krcc:.4f}"),
        ("RMSE", f"{r.rmse:.4f}"), ("N", str(r.n)), ("not scored", str(len(data.failed))),
    ))
    notes = [f"PLCC and RMSE after a {r.fit} fit of predictions to {e(data.target_name)}."]
    if data.flipped:
        notes.append(f"Predictions negated: the model's scores run the other way from "
                     f"{e(data.target_name)}, so a good model has positive SRCC.")
    images = "".join(
        f'<figure><a href="{name}"><img src="{_data_uri(folder / name)}" alt="{name}"></a>'
        f"<figcaption>{name}</figcaption></figure>"
        for name in pictures
    )
    type_table = ""
    if types:
        type_table = "<h2>Per distortion type</h2><table><tr><th>type</th><th>N</th>" + "".join(
            f"<th>{m}</th>" for m in ("SRCC", "PLCC", "KRCC", "RMSE")) + "</tr>" + "".join(
            f"<tr><td>{e(name)}</td><td>{c.n}</td><td>{c.srcc:.4f}</td><td>{c.plcc:.4f}</td>"
            f"<td>{c.krcc:.4f}</td><td>{c.rmse:.4f}</td></tr>" for name, c in types.items()
        ) + "</table>"
    failed = ""
    if data.failed:
        failed = "<h2>Not scored</h2><ul>" + "".join(
            f"<li>{e(str(m))}</li>" for m in data.failed) + "</ul>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>DIQA evaluation: {e(data.title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left; }}
figure {{ display: inline-block; margin: 0.5em; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>DIQA evaluation: {e(data.title)}</h1>
<table>{rows}</table>
<p>{" ".join(notes)}</p>
{images}
{type_table}
{failed}
<p><a href="predictions.csv">predictions.csv</a>: every scored image with its
{e(data.target_name)} and the model's score.</p>
</body>
</html>
"""


def _data_uri(path):
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")

