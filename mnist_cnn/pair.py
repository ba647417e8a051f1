"""Reading two touching digits whole (Hochuli, Oliveira, Britto and Sabourin 2018, "Handwritten
digit segmentation: Is it still necessary?", Pattern Recognition 78): a CNN reads a wide
piece's crop as one of 100 pairs 00..99, as one digit alone (the length decision) or as no
digit, trained on synthetic touching pairs of MNIST *training* digits (the test digits make
tests/test_segment.py's measurement set), wide single training digits (some crossed by
lines or drawn hollow) and synthetic.make_outliers' non-digits.

The crop is laid out as a digit is, at twice the width (preprocess.normalise_pair). The Reader
passes this model to segment.find_numbers, which asks it about pieces wide enough to be cut
that no cut won (segment.resegment), and about narrower ones the digit model is unsure of
(segment.split_narrow_pairs).
`python -m mnist_cnn.pair` (`make train-pair`) trains it: 320,000 examples, 6 epochs, about
an hour on 2 cores without AVX-512.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from mnist_cnn import __version__
from mnist_cnn.config import SHIPPED_MODELS_DIR, user_data_dir
from mnist_cnn.engine import onnx_runtime
from mnist_cnn.preprocess import PAIR_SHAPE, crop_to_ink, normalise_pair
from mnist_cnn.segment import NO_DIGIT, PAIR_CLASSES

# The classes in the layout segment.py reads them in.
PAIRS = PAIR_CLASSES  # classes 0..99: the pair "ab" is class 10 * a + b
SINGLE = PAIRS  # class 100: one digit alone, however wide
NOT_DIGITS = NO_DIGIT  # class 101: no digit at all (a letter, a scribble, a shape)
CLASSES = PAIRS + 2
STROKE = 0.3  # generated ink above this is a stroke, where touching digits touch
SHIPPED_PAIR_PATH = SHIPPED_MODELS_DIR / "mnist_cnn_pair.keras"  # its .onnx export beside it


# --- synthetic touching pairs ------------------------------------------------------------------

HEIGHTS = (24, 64)  # digit heights in pixels before normalising (the reader's work size)
SLANT = 0.35  # shear, columns per row, either way
OVERLAP = (-2, 4)  # the right digit's strokes overlap the left's by this many pixels
STRETCH = (1.0, 1.5)  # a single digit is drawn up to this much wider, to be as wide as a pair
SINGLE_WIDE = 0.9  # single digits at least this wide for their height teach the length ...
WIDE_SINGLES = 0.6  # ... for this share of the single digits; the rest are drawn as they come
# A share of the single digits first degraded by what changes the ink of the piece the reader
# crops (mnist_cnn.degrade: straight or zigzag lines through the digit, hollow strokes; a
# speck or a stain apart from the digit is a piece of its own): a line through one digit
# makes its piece as wide as a pair, and a model that never saw one reads a 6 crossed by a
# scribble as 46. They come on top of the clean ones (SINGLE_SHARE), which teach that a
# clean wide 0 or 9 is one digit. (Degrading the pairs' digits as well cost 4 points of
# touching pairs.)
DEGRADED = 0.3
INK_DEGRADATIONS = ("crossing_lines", "hollow_strokes")


def drawn(digit: np.ndarray, height: int, slant: float, stretch: float, rng) -> np.ndarray:
    """An MNIST digit uint8 (28, 28) as ink float32 (height, w) in [0, 1]: cropped, scaled to
    `height`, `stretch` times wider, sheared by `slant`, its pen thickened or thinned."""
    crop = crop_to_ink(digit).astype(np.float32) / 255
    width = max(1, round(crop.shape[1] * height / crop.shape[0] * stretch))
    ink = cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC)
    shift = abs(slant) * height
    matrix = np.float32([[1, slant, -shift if slant > 0 else 0], [0, 1, 0]])
    ink = cv2.warpAffine(ink, matrix, (width + round(shift), height), flags=cv2.INTER_LINEAR)
    pen = rng.random()
    if pen < 0.25:
        ink = cv2.dilate(ink, np.ones((3, 3), np.uint8))
    elif pen < 0.35 and height >= 40:
        ink = cv2.erode(ink, np.ones((2, 2), np.uint8))
    ink = np.clip(ink, 0.0, 1.0)
    cols = np.flatnonzero(ink.max(axis=0) > 0.1)
    return ink[:, cols[0] : cols[-1] + 1] if len(cols) else ink


def touching_column(left: np.ndarray, right: np.ndarray, shift: int, overlap: int) -> int:
    """The column (in `left`'s frame) of `right`'s first column, `shift` rows lower, where its
    strokes first touch `left`'s, moved `overlap` pixels further in."""
    rows = np.arange(right.shape[0]) + shift
    inside = (rows >= 0) & (rows < left.shape[0])
    a, b = left[rows[inside]] > STROKE, right[inside] > STROKE
    both = a.any(axis=1) & b.any(axis=1)
    if not both.any():
        return left.shape[1] - overlap
    last = a.shape[1] - 1 - np.argmax(a[:, ::-1], axis=1)
    first = np.argmax(b, axis=1)
    return int(np.max(last[both] + 1 - first[both])) - overlap


def as_read(ink: np.ndarray, rng) -> np.ndarray:
    """Generated ink as the reader's ink map gives it: faded, blurred a little for some,
    scaled to full strength and cut at a noise floor."""
    if rng.random() < 0.3:
        ink = cv2.GaussianBlur(ink, (3, 3), rng.uniform(0.4, 0.9))
    ink = ink * rng.uniform(0.6, 1.0)
    ink = ink / max(float(ink.max()), 1e-6)
    floor = rng.uniform(0.08, 0.25)
    return np.where(ink > floor, ink, 0.0).astype(np.float32)


def pair_ink(first: np.ndarray, second: np.ndarray, rng) -> np.ndarray:
    """Two MNIST digits uint8 (28, 28) drawn touching, left to right, as ink float32."""
    height = int(rng.integers(*HEIGHTS, endpoint=True))
    slant = rng.uniform(-SLANT, SLANT)
    inks = [
        drawn(d, round(height * rng.uniform(0.85, 1.1)), slant + rng.uniform(-0.05, 0.05), 1.0, rng)
        for d in (first, second)
    ]
    shift = int(rng.integers(-height // 8, height // 8 + 1))
    at = touching_column(inks[0], inks[1], shift, int(rng.integers(OVERLAP[0], OVERLAP[1] + 1)))
    top = max(0, -shift)
    tall = max(inks[0].shape[0] + top, inks[1].shape[0] + top + shift)
    start = max(0, -at)
    wide = max(inks[0].shape[1] + start, at + start + inks[1].shape[1])
    canvas = np.zeros((tall, wide), np.float32)
    a, b = inks
    canvas[top : top + a.shape[0], start : start + a.shape[1]] = a
    area = canvas[top + shift : top + shift + b.shape[0], at + start : at + start + b.shape[1]]
    np.maximum(area, b, out=area)
    return canvas


def single_ink(digit: np.ndarray, rng) -> np.ndarray | None:
    """One MNIST digit drawn as ink float32, slanted and, for WIDE_SINGLES of them, stretched
    wider; None when one of those came out narrower than SINGLE_WIDE of its height."""
    height = int(rng.integers(*HEIGHTS, endpoint=True))
    wide = rng.random() < WIDE_SINGLES
    stretch = rng.uniform(*STRETCH) if wide and rng.random() < 0.7 else 1.0
    ink = drawn(digit, height, rng.uniform(-1.5 * SLANT, 1.5 * SLANT), stretch, rng)
    return ink if not wide or ink.shape[1] >= SINGLE_WIDE * ink.shape[0] else None


def outlier_ink(picture, rng) -> np.ndarray | None:
    """A synthetic non-digit picture (synthetic.make_outliers: dark on white) as ink, or None
    where it has none."""
    ink = 1.0 - np.asarray(picture, np.float32) / 255
    ink = np.where(ink > 0.1, ink, 0.0)
    return as_read(ink, rng) if (ink > 0.3).any() else None


def make_pairs(
    x: np.ndarray,
    y: np.ndarray,
    count: int,
    single_share: float,
    seed: int,
    outlier_share: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """`count` pair-model inputs uint8 (count, *PAIR_SHAPE) and their classes int (count,):
    touching pairs of the digits x uint8 (N, 28, 28) (labels y), every pair class alike,
    `single_share` of single digits (class SINGLE, most drawn wide, DEGRADED of them crossed
    by lines or drawn hollow) and `outlier_share` of synthetic non-digits (class NOT_DIGITS:
    synthetic.make_outliers' letters, symbols, scribbles, shapes, blobs, doodles)."""
    from mnist_cnn.degrade import degrade_batch
    from mnist_cnn.synthetic import TRAINING_GLYPHS, make_outliers

    rng = np.random.default_rng(seed)
    degraded = degrade_batch(x, rng, DEGRADED, INK_DEGRADATIONS)
    images = np.zeros((count, *PAIR_SHAPE), np.uint8)
    labels = np.zeros(count, np.int64)
    by_label = [np.flatnonzero(y == d) for d in range(10)]
    outliers = make_outliers(round(count * outlier_share), (seed, 1), TRAINING_GLYPHS)[0]
    others = iter(outliers)
    for n in range(count):
        draw = rng.random()
        if draw < outlier_share:
            ink = outlier_ink(next(others, outliers[0]), rng) if outliers else None
            if ink is not None:
                images[n], labels[n] = normalise_pair(ink), NOT_DIGITS
                continue
        if draw < outlier_share + single_share:
            ink = None
            while ink is None:
                ink = single_ink(degraded[int(rng.integers(len(x)))], rng)
            label = SINGLE
        else:
            label = int(rng.integers(PAIRS))
            a, b = (int(rng.choice(by_label[d])) for d in divmod(label, 10))
            ink = pair_ink(x[a], x[b], rng)
        images[n] = normalise_pair(as_read(ink, rng))
        labels[n] = label
    return images, labels


# --- the model -----------------------------------------------------------------------------------


def build_pair_model():
    """A CNN: uint8-range PAIR_SHAPE input -> CLASSES probabilities (100 pairs, one digit, no
    digit). Three 3x3 convolutions of 32, 64 and 128 filters, each batch-normalised, then
    pooled; a 256-unit layer. (The earlier pair model, 24, 48 and 96 filters without batch
    normalisation, underfitted: pairs of its own training digits read no better than held-out
    ones; see docs/reading.md.)"""
    import keras
    from keras import layers

    def block(filters: int) -> list:
        return [
            layers.Conv2D(filters, 3, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(2),
        ]

    return keras.Sequential(
        [
            keras.Input(shape=(*PAIR_SHAPE, 1)),
            layers.Rescaling(1 / 255),
            *block(32),
            *block(64),
            *block(128),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(CLASSES, activation="softmax", dtype="float32"),
        ],
        name="mnist_cnn_pair",
    )


HELD_OUT = 5000  # the last training digits make the validation pairs, never the training ones
SINGLE_SHARE = 0.35  # of the generated examples, single digits (a quarter clean, DEGRADED not)
OUTLIER_SHARE = 0.1  # ... and non-digits
PAIR_EXAMPLES = 320_000  # 176,000 of them pairs
PAIR_EPOCHS = 6
PAIR_BATCH = 128


def train_pair_model(
    x: np.ndarray,
    y: np.ndarray,
    seed: int = 0,
    examples: int = PAIR_EXAMPLES,
    epochs: int = PAIR_EPOCHS,
    verbose: int = 2,
):
    """Train the pair model on touching pairs of MNIST training digits x uint8 (N, 28, 28)
    (labels y), the last HELD_OUT kept for the validation pairs. Reproducible from `seed`.
    Returns the model and the validation accuracy."""
    import keras

    keras.utils.set_random_seed(seed)
    x_fit, y_fit = x[:-HELD_OUT], y[:-HELD_OUT]
    images, labels = make_pairs(x_fit, y_fit, examples, SINGLE_SHARE, seed, OUTLIER_SHARE)
    val_images, val_labels = make_pairs(
        x[-HELD_OUT:],
        y[-HELD_OUT:],
        max(1000, examples // 40),
        SINGLE_SHARE,
        seed + 1,
        OUTLIER_SHARE,
    )
    model = build_pair_model()
    steps = epochs * -(-examples // PAIR_BATCH)
    rate = keras.optimizers.schedules.CosineDecay(1e-3, steps, alpha=0.05)
    model.compile(
        keras.optimizers.Adam(rate), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(
        images[..., np.newaxis],
        labels,
        batch_size=PAIR_BATCH,
        epochs=epochs,
        verbose=verbose,
        validation_data=(val_images[..., np.newaxis], val_labels),
    )
    _, accuracy = model.evaluate(val_images[..., np.newaxis], val_labels, verbose=0)
    return model, float(accuracy)


# --- shipping and loading ------------------------------------------------------------------------


def export_pair_onnx(model, keras_path: Path) -> Path:
    """Write the pair model's ONNX export beside `keras_path` (export.export_onnx)."""
    from mnist_cnn.export import export_onnx

    return export_onnx(model, keras_path, example_shape=PAIR_SHAPE)


def load_pair_score(path: Path = SHIPPED_PAIR_PATH) -> Callable[[np.ndarray], np.ndarray] | None:
    """segment.PairScore from a pair model: uint8 (N, *PAIR_SHAPE) -> probabilities float32
    (N, CLASSES), on ONNX Runtime from its export beside `path` when there is one (no
    TensorFlow), else on Keras; None when neither file is there."""
    onnx_path = Path(path).with_suffix(".onnx")
    if onnx_path.is_file():
        onnxruntime = onnx_runtime()

        # One thread that does not spin: a few wide pieces at a time gain nothing from a
        # pool, and its threads spinning between calls slow the reading around them (reading
        # 1,000 files took 1.4x as long on 2 cores with ONNX Runtime's default pool).
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        name = session.get_inputs()[0].name

        def run(crops: np.ndarray) -> np.ndarray:
            return session.run(None, {name: crops.astype(np.float32)[..., np.newaxis]})[0]

        return run
    if not Path(path).is_file():
        return None
    import keras

    model = keras.saving.load_model(path)
    return lambda crops: np.asarray(
        model.predict_on_batch(crops.astype(np.float32)[..., np.newaxis]), np.float32
    )


@cache
def shipped_pair_score() -> Callable[[np.ndarray], np.ndarray] | None:
    """The shipped pair model's load_pair_score, loaded once (None when it is not shipped)."""
    return load_pair_score(SHIPPED_PAIR_PATH)


def user_pair_path() -> Path:
    """Where `python -m mnist_cnn.pair` writes unless told otherwise: a subfolder of the user's
    models, so that it is never taken for their latest trained digit model."""
    return user_data_dir() / "models" / "pair" / SHIPPED_PAIR_PATH.name


def main(argv: list[str] | None = None) -> None:
    """python -m mnist_cnn.pair: train the pair model on MNIST's training digits, save it with
    its ONNX export, and print its accuracy on pairs of held-out training digits."""
    parser = argparse.ArgumentParser(
        prog="python -m mnist_cnn.pair",
        description="Train the touching-pair model on MNIST's training digits, save it with its "
        "ONNX export, and print its accuracy on pairs of held-out training digits.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--seed", type=int, default=0, help="generator and training seed")
    parser.add_argument("--examples", type=int, default=PAIR_EXAMPLES, help="generated examples")
    parser.add_argument("--epochs", type=int, default=PAIR_EPOCHS, help="passes over them")
    parser.add_argument(
        "--out",
        type=Path,
        default=user_pair_path(),
        help="the .keras file to write (the reader uses the shipped one: "
        f"{SHIPPED_PAIR_PATH}, which only an explicit --out replaces)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    from mnist_cnn.data import load_mnist

    start = time.perf_counter()
    mnist = load_mnist()
    model, accuracy = train_pair_model(
        mnist.x_train, mnist.y_train, args.seed, args.examples, args.epochs
    )
    from mnist_cnn.model import save_atomically

    model.optimizer = None  # the shipped file need not carry Adam's moments (a third its size)
    save_atomically(model, args.out)
    export_pair_onnx(model, args.out)
    print(
        f"pair model: {accuracy:.2%} on pairs of held-out training digits, "
        f"{time.perf_counter() - start:.0f} s; wrote {args.out} and its .onnx"
    )


if __name__ == "__main__":
    main()
