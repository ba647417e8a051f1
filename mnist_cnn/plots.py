"""Figures for the README: sample digits, class balance, training curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed, or wanted, on a server or in CI

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

sns.set_theme(style="whitegrid", context="notebook")


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Save `fig` to `path` (creating its folder) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def digit_grid(
    images: np.ndarray, titles: Sequence[str], path: Path, columns: int = 8, suptitle: str = ""
) -> Path:
    """Draw 28x28 digits in a grid, each with a title, and save it."""
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles, strict=False):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(title, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    return save_figure(fig, path)


def plot_samples(images: np.ndarray, labels: np.ndarray, path: Path, count: int = 32) -> Path:
    """A grid of the first `count` training digits with their labels."""
    titles = [f"label {label}" for label in labels[:count]]
    return digit_grid(images[:count], titles, path, suptitle="Sample training images")


def plot_class_counts(labels: np.ndarray, path: Path) -> Path:
    """A bar chart of how many images each digit has."""
    digits, counts = np.unique(labels, return_counts=True)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.barplot(x=digits, y=counts, ax=ax, color="steelblue")
    ax.set(xlabel="digit", ylabel="images", title=f"Images per class ({len(labels):,} in all)")
    return save_figure(fig, path)


def plot_curve(history: dict[str, list[float]], metric: str, path: Path) -> Path:
    """Training and validation `metric` per epoch, from a Keras history dict."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in ((metric, "training"), (f"val_{metric}", "validation")):
        if key in history:
            epochs = range(1, len(history[key]) + 1)
            sns.lineplot(x=list(epochs), y=history[key], marker="o", label=label, ax=ax)
    ax.set(xlabel="epoch", ylabel=metric, title=f"Model {metric}")
    return save_figure(fig, path)


def plot_confusion_matrix(cm: np.ndarray, path: Path) -> Path:
    """A heatmap of confusion counts, true class down the side, prediction along the top."""
    fig, ax = plt.subplots(figsize=(8, 6.5))
    # A log colour scale lets a handful of mistakes show beside a thousand correct answers;
    # zero cells are masked, so they stay blank instead of crowding the picture with zeros.
    sns.heatmap(
        cm,
        mask=cm == 0,
        norm=matplotlib.colors.LogNorm(vmin=1, vmax=max(int(cm.max()), 2)),
        annot=True,
        fmt="d",
        cmap="Blues",
        cbar_kws={"label": "test images (log scale)"},
        linewidths=0.5,
        linecolor="lightgray",
        ax=ax,
    )
    ax.set(xlabel="predicted digit", ylabel="true digit")
    ax.set_title(f"Confusion matrix ({int(cm.sum()):,} test images)")
    return save_figure(fig, path)


def plot_predictions(
    images: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    confidences: np.ndarray,
    path: Path,
    suptitle: str,
) -> Path:
    """A grid of digits, each titled with its true label, the prediction and its confidence."""
    titles = [
        f"true {label}\npred {pred} ({conf:.1%})"
        for label, pred, conf in zip(labels, predictions, confidences, strict=True)
    ]
    return digit_grid(images, titles, path, suptitle=suptitle)


def plot_segmentation(
    picture: np.ndarray,
    boxes: Sequence[Sequence[int]],
    digits: np.ndarray,
    probs: np.ndarray,
    path: Path,
) -> Path:
    """A picture (uint8 (H, W, 3) or (H, W)) with a box per digit found, each digit's 28x28
    (uint8 (N, 28, 28)) with its reading and confidence from `probs` (N, 10), and the number."""
    count = len(digits)
    fig = plt.figure(figsize=(max(7.0, 1.6 * count), 5.2))
    grid = fig.add_gridspec(2, count, height_ratios=[3, 1.2])
    top = fig.add_subplot(grid[0, :])
    top.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
    for n, (left, upper, right, lower) in enumerate(boxes):
        top.add_patch(
            plt.Rectangle(
                (left, upper), right - left, lower - upper, fill=False, color="orange", lw=2
            )
        )
        top.text(left, upper - 6, str(n + 1), color="orange", fontsize=11, weight="bold")
    number = "".join(str(int(np.argmax(p))) for p in probs)
    top.set_title(f"read as {number}")
    top.axis("off")
    for n, (digit, p) in enumerate(zip(digits, probs, strict=True)):
        ax = fig.add_subplot(grid[1, n])
        ax.imshow(digit, cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{n + 1}: {int(np.argmax(p))} ({float(np.max(p)):.1%})", fontsize=9)
        ax.axis("off")
    return save_figure(fig, path)
