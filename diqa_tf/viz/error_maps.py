"""Pictures of images with their predicted maps (matplotlib, the `[viz]` extra)."""

import numpy as np

from diqa_tf.viz.figures import pyplot, save_figure


def upsample(grid_map, shape):
    """Nearest-neighbour upsampling of an output-grid map to an image's [H, W]."""
    grid_map = np.asarray(grid_map)[..., 0] if np.ndim(grid_map) == 3 else np.asarray(grid_map)
    ry = -(-shape[0] // grid_map.shape[0])
    rx = -(-shape[1] // grid_map.shape[1])
    return np.kron(grid_map, np.ones((ry, rx)))[: shape[0], : shape[1]]


def save_map_grid(rows, path, title=None, error_title="predicted error map (higher = more error)"):
    """Write a PNG grid: one row per entry, columns image | error map | quality map.

    `rows`: dicts with "image" (RGB 0-255), "error_map", "quality_map" (output
    grid) and "label"; `error_title` says where the error maps come from. The file
    is written atomically.
    """
    plt = pyplot()
    # One colour scale per column, so rows compare (robust to a few extreme cells).
    error_range = np.percentile(np.concatenate([np.ravel(r["error_map"]) for r in rows]), [1, 99])
    quality_range = np.percentile(
        np.concatenate([np.ravel(r["quality_map"]) for r in rows]), [1, 99]
    )
    fig, axes = plt.subplots(len(rows), 3, figsize=(10, 3.1 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows):
        image = np.clip(np.asarray(row["image"]) / 255.0, 0, 1)
        shape = image.shape[:2]
        ax_row[0].imshow(image)
        ax_row[0].set_title(row["label"], fontsize=9)
        error = ax_row[1].imshow(
            upsample(row["error_map"], shape), cmap="magma", vmin=error_range[0], vmax=error_range[1]
        )
        ax_row[1].set_title(error_title, fontsize=8)
        fig.colorbar(error, ax=ax_row[1], fraction=0.046)
        ax_row[2].imshow(image.mean(axis=-1), cmap="gray")
        quality = ax_row[2].imshow(
            upsample(row["quality_map"], shape),
            cmap="RdYlGn",
            alpha=0.55,
            vmin=quality_range[0],
            vmax=quality_range[1],
        )
        ax_row[2].set_title("perceptual quality map (overlay)", fontsize=8)
        fig.colorbar(quality, ax=ax_row[2], fraction=0.046)
        for ax in ax_row:
            ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.98) if title else None)
    save_figure(fig, path)
