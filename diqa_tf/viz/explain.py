"""One picture per image: the image, its predicted error map and its quality map.

Maps are drawn over a grey copy of the image, each output-grid cell covering its
4x4 pixels (nearest neighbour: what you see is what the network produced). With a
reference, the true objective error map and the reliability map follow; the true and
predicted error maps share one colour scale so they can be compared.
"""

import numpy as np

from diqa_tf.viz.figures import pyplot, save_figure

# Drawing a 40-megapixel image at full size would cost memory and time for no visible
# gain: the shown image is subsampled to at most this many pixels a side.
MAX_SHOWN_SIDE = 1024
PANEL_INCHES = 3.4


def save_explanation(explanation, path, label, stride=4):
    """Write the picture of an `Explanation` (diqa_tf.explain) to `path` (PNG, atomic).

    `label` (the image's name) and the score make the title; `stride` is the model's
    output stride (pixels per map cell).
    """
    plt = pyplot()
    height, width = explanation.image.shape[:2]
    step = max(1, -(-max(height, width) // MAX_SHOWN_SIDE))
    shown = np.clip(explanation.image[::step, ::step] / 255.0, 0.0, 1.0)
    grey = shown.mean(axis=-1)

    error_maps = [explanation.error_map]
    if explanation.true_error_map is not None:
        error_maps.append(explanation.true_error_map)
    error_range = _robust_range(error_maps)
    source = {"stage1": "stage-1 model", "quality_model": "quality model's head"}
    panels = [
        (f"predicted error map\n({source[explanation.error_map_source]}; "
         "higher = more error)", explanation.error_map, "magma", error_range),
        ("perceptual quality map\n(higher = better)", explanation.quality_map, "RdYlGn",
         _robust_range([explanation.quality_map])),
    ]
    if explanation.true_error_map is not None:
        panels += [
            ("true error map\n(from the reference)", explanation.true_error_map, "magma",
             error_range),
            ("reliability map\n(weight of each cell in stage 1)", explanation.reliability,
             "viridis", (0.0, 1.0)),
        ]

    aspect = height / width
    fig, axes = plt.subplots(
        1, len(panels) + 1, figsize=(PANEL_INCHES * (len(panels) + 1), PANEL_INCHES * aspect + 1.2)
    )
    extent = (0, width, height, 0)
    axes[0].imshow(shown, extent=extent)
    axes[0].set_title("image", fontsize=9)
    for ax, (title, grid, cmap, (low, high)) in zip(axes[1:], panels):
        ax.imshow(grey, cmap="gray", extent=extent)
        # The grid's cells are stride x stride pixels; the last row and column may
        # reach past the image's edge, which the axis limits cut off.
        grid_extent = (0, grid.shape[1] * stride, grid.shape[0] * stride, 0)
        drawn = ax.imshow(grid, cmap=cmap, alpha=0.6, vmin=low, vmax=high,
                          extent=grid_extent, interpolation="nearest")
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.set_title(title, fontsize=9)
        fig.colorbar(drawn, ax=ax, fraction=0.046 * aspect, pad=0.04)  # as tall as the image
    for ax in axes:
        ax.axis("off")
    fig.suptitle(f"{label}: score {explanation.score:.1f}", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def _robust_range(maps):
    """1st-99th percentile of the maps' values: a few extreme cells do not wash out the rest."""
    values = np.concatenate([np.ravel(m) for m in maps])
    low, high = np.percentile(values, [1, 99])
    if not high > low:  # a flat map
        low, high = low - 0.5, high + 0.5
    return float(low), float(high)
