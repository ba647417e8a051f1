"""MNIST-C robustness benchmark: test error under the 15 MNIST-C corruptions (Mu and Gilmer 2019).

    python -m benchmarks.robustness [--count 2000] [--json] [--skip-product] [--skip-baseline]

The first --count MNIST test digits are corrupted with benchmarks/mnist_c.py (a port of the
published code, default severities, seeded with --seed) and stored as uint8 like the published
dataset. Each corruption's test error is measured for:

- the default and the strong model (--model, --strong-model): Keras, fed float32 x/255
  (N, 28, 28, 1), the benchmark's protocol;
- a plain CNN trained in this run on clean MNIST (2 epochs, seeded): the baseline;
- the product path: test_model.py --json run on PNG files of the digits, 280x280 black ink on
  white (inverted, resized by --resize) and 28x28 white on black as they are. An answer is
  right when its `number` is the label and `is_digit` is true; "not a digit" answers and refused
  files (an `error:` line on stderr, or a JSON object with an "error" key) are counted too.

MNIST-C is a report only: nothing here may feed training or the choice of a recipe.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from benchmarks.hardware import describe_cpu
from benchmarks.mnist_c import CORRUPTIONS, corrupt, to_uint8
from mnist_cnn.config import shipped_model_path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = shipped_model_path("cnn")
STRONG_MODEL = shipped_model_path("strong")
CLEAN = "clean"
PAGE_SIZE = 280  # the 280x280 file form: ten times MNIST's 28 pixels
RESIZE_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST}
# The baseline: a plain CNN, trained here on clean MNIST.
BASELINE_EPOCHS = 2
BASELINE_BATCH = 128
FILE_NAME = re.compile(r"(?P<corruption>[a-z_]+)/(?P<index>\d{5})_(?P<label>\d)\.png")


class ProductScore(NamedTuple):
    """The product path's result on one set of files."""

    error: float
    not_digit: int
    refused: int
    missing: int  # files with neither an answer nor an error


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--count", type=int, default=2000, help="first N MNIST test digits")
    parser.add_argument("--seed", type=int, default=0, help="corruptions' and baseline's seed")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="the default model")
    parser.add_argument("--strong-model", type=Path, default=STRONG_MODEL, help="strong model")
    parser.add_argument(
        "--resize",
        choices=sorted(RESIZE_FILTERS),
        default="bilinear",
        help="interpolation of the 28 -> 280 pixel upscale for the 280x280 PNG form",
    )
    parser.add_argument(
        "--corruptions",
        nargs="*",
        choices=CORRUPTIONS,
        default=list(CORRUPTIONS),
        metavar="NAME",
        help="the corruptions to score, beside the clean digits (none: the clean digits only)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument("--skip-product", action="store_true", help="no test_model.py runs")
    parser.add_argument("--skip-baseline", action="store_true", help="no baseline training")
    return parser.parse_args(argv)


def corrupted_sets(
    images: np.ndarray, seed: int, names: tuple[str, ...] = CORRUPTIONS
) -> dict[str, np.ndarray]:
    """The clean uint8 digits (N, 28, 28) and each corruption `names` of them, as uint8."""
    sets = {CLEAN: images}
    for name in names:
        sets[name] = to_uint8(corrupt(images, name, seed))
    return sets


def model_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 x/255 (N, 28, 28, 1), the benchmark's protocol."""
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def keras_errors(model, sets: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, float]:
    """A Keras model's test error on each set."""
    errors = {}
    for name, images in sets.items():
        probabilities = model.predict(model_input(images), batch_size=500, verbose=0)
        errors[name] = float(np.mean(np.argmax(probabilities, axis=1) != labels))
    return errors


def exported_errors(model_path: Path, sets: dict[str, np.ndarray], labels: np.ndarray) -> dict:
    """The test error on each set of the ONNX export beside a .keras model, on ONNX Runtime:
    the same weights, so the same figures up to float rounding."""
    from mnist_cnn.engine import OnnxEngine, onnx_beside

    engine = OnnxEngine(onnx_beside(model_path))
    return {
        name: float(np.mean(engine.predict(images).argmax(axis=1) != labels))
        for name, images in sets.items()
    }


def plain_cnn(seed: int):
    """Conv32-3x3-relu, MaxPool, Conv64-3x3-relu, MaxPool, Flatten, Dense128-relu, Dropout 0.5,
    Dense10 softmax; Adam, categorical cross-entropy. Seeded through keras.utils."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train_baseline(x_train: np.ndarray, y_train: np.ndarray, seed: int):
    """The plain CNN trained on clean MNIST train (uint8 (N, 28, 28), labels (N,))."""
    model = plain_cnn(seed)
    model.fit(
        model_input(x_train),
        y_train,
        epochs=BASELINE_EPOCHS,
        batch_size=BASELINE_BATCH,
        shuffle=True,
        verbose=0,
    )
    return model


def as_page(image: np.ndarray, resize: str) -> Image.Image:
    """A uint8 28x28 digit (white on black) as a 280x280 picture of black ink on white."""
    inverted = Image.fromarray(255 - image, mode="L")
    return inverted.resize((PAGE_SIZE, PAGE_SIZE), RESIZE_FILTERS[resize])


def write_pngs(folder: Path, images: np.ndarray, labels: np.ndarray, page: str | None) -> None:
    """Write each digit to folder/<index>_<label>.png: as is, or as a 280x280 page (`page` is
    then the resize filter's name)."""
    folder.mkdir(parents=True)
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        picture = as_page(image, page) if page else Image.fromarray(image, mode="L")
        picture.save(folder / f"{index:05d}_{label}.png")


def product_model_path(keras_path: Path) -> Path:
    """The model test_model.py should read: the ONNX export beside the .keras if there is one
    (test_model.py checks that it was made from that file and says so if not), else the .keras."""
    onnx_path = keras_path.with_suffix(".onnx")
    return onnx_path if onnx_path.is_file() else keras_path


def run_test_model(folders: list[Path], model_path: Path) -> tuple[list[dict], list[str]]:
    """Run test_model.py --json on the folders: (the JSON objects printed, stderr's lines)."""
    command = [sys.executable, str(ROOT / "test_model.py"), "--json", "--model-path"]
    command += [str(model_path), *map(str, folders)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode not in (0, 1) or (not records and result.returncode != 0):
        raise RuntimeError(f"test_model.py failed ({result.returncode}): {result.stderr[-2000:]}")
    return records, result.stderr.splitlines()


def file_key(text: str) -> tuple[str, int] | None:
    """(corruption, index) of the benchmark file named in `text`, if any."""
    match = FILE_NAME.search(text)
    return (match["corruption"], int(match["index"])) if match else None


def score_product(
    records: list[dict], stderr: list[str], labels: np.ndarray, names: list[str]
) -> dict[str, ProductScore]:
    """Each set's product-path score from test_model.py's JSON lines and its stderr."""
    right = dict.fromkeys(names, 0)
    not_digit = dict.fromkeys(names, 0)
    refused: dict[str, set[int]] = {name: set() for name in names}
    answered: dict[str, set[int]] = {name: set() for name in names}
    for line in stderr:
        key = file_key(line) if line.startswith("error:") else None
        if key:
            refused[key[0]].add(key[1])
    for record in records:
        key = file_key(str(record.get("path", "")))
        if key is None:
            continue
        name, index = key
        if "error" in record:
            refused[name].add(index)
            continue
        answered[name].add(index)
        if not record.get("is_digit", False):
            not_digit[name] += 1
        elif record.get("number") == str(labels[index]):
            right[name] += 1
    count = len(labels)
    return {
        name: ProductScore(
            error=1 - right[name] / count,
            not_digit=not_digit[name],
            refused=len(refused[name] - answered[name]),
            missing=count - len(answered[name] | refused[name]),
        )
        for name in names
    }


def product_scores(
    sets: dict[str, np.ndarray], labels: np.ndarray, model_path: Path, page: str | None
) -> dict[str, ProductScore]:
    """The product path on every set in one test_model.py run (one folder per set)."""
    with tempfile.TemporaryDirectory(prefix="robustness-") as temp:
        folders = []
        for name, images in sets.items():
            folders.append(Path(temp) / name)
            write_pngs(folders[-1], images, labels, page)
        records, stderr = run_test_model(folders, product_model_path(model_path))
    return score_product(records, stderr, labels, list(sets))


def summary(errors: dict[str, float]) -> dict[str, float | str | None]:
    """Mean error over the corruptions scored (all 15 by default) and the worst one; None
    for both when only the clean digits were scored."""
    corrupted = {name: error for name, error in errors.items() if name != CLEAN}
    if not corrupted:
        return {"mean": None, "worst": None}
    worst = max(corrupted, key=corrupted.get)
    return {"mean": float(np.mean(list(corrupted.values()))), "worst": worst}


def machine() -> dict:
    """The CPU (model name and its AVX-512 / bf16 flags), the cores and the date."""
    cpu = describe_cpu()
    return {
        "cpu": cpu["model_name"],
        "flags": cpu["flags"],
        "cores": cpu["cores"],
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def measure(args: argparse.Namespace) -> dict:
    """Every column's errors per set, with the run's settings and machine."""
    from mnist_cnn.data import load_mnist
    from mnist_cnn.model import load_trained_model

    mnist = load_mnist()
    images, labels = mnist.x_test[: args.count], mnist.y_test[: args.count].astype(int)
    sets = corrupted_sets(images, args.seed, tuple(args.corruptions))
    columns: dict[str, dict] = {
        "default": keras_errors(load_trained_model(args.model), sets, labels),
        "strong": keras_errors(load_trained_model(args.strong_model), sets, labels),
        "default_onnx": exported_errors(args.model, sets, labels),
        "strong_onnx": exported_errors(args.strong_model, sets, labels),
    }
    if not args.skip_baseline:
        baseline = train_baseline(mnist.x_train, mnist.y_train, args.seed)
        columns["plain_cnn"] = keras_errors(baseline, sets, labels)
    if not args.skip_product:
        for column, page in (("product_280", args.resize), ("product_28", None)):
            scores = product_scores(sets, labels, args.model, page)
            columns[column] = {name: score._asdict() for name, score in scores.items()}
    return {
        "command": " ".join(["python -m benchmarks.robustness", *sys.argv[1:]]),
        "count": args.count,
        "seed": args.seed,
        "model": str(args.model),
        "strong_model": str(args.strong_model),
        "product_model": str(product_model_path(args.model)),
        "resize": args.resize,
        "machine": machine(),
        "columns": columns,
    }


def column_errors(column: dict) -> dict[str, float]:
    """{set: error} of a column, whether it holds errors or product-path scores."""
    return {name: v["error"] if isinstance(v, dict) else v for name, v in column.items()}


def product_cell(score: dict) -> str:
    """A product-path cell: error, then not-a-digit and refused counts (and missing, if any)."""
    cell = f"{score['error']:6.1%} {score['not_digit']:5d} {score['refused']:3d}"
    return cell + (f" ({score['missing']} missing)" if score["missing"] else "")


HEADERS = {
    "default": "default",
    "strong": "strong",
    "default_onnx": "default, ONNX",
    "strong_onnx": "strong, ONNX",
    "plain_cnn": "plain CNN",
    "product_280": "test_model 280x280 (err, not-digit, refused)",
    "product_28": "test_model 28x28 (err, not-digit, refused)",
}


def table(report: dict) -> str:
    """The readable table: one row per set, then the mean over the 15 and the worst."""
    columns = report["columns"]
    lines = ["| corruption | " + " | ".join(HEADERS[c] for c in columns) + " |"]
    lines.append("|---" * (len(columns) + 1) + "|")
    for name in next(iter(columns.values())):
        cells = [
            product_cell(col[name]) if isinstance(col[name], dict) else f"{col[name]:.1%}"
            for col in columns.values()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    summaries = [summary(column_errors(col)) for col in columns.values()]
    if summaries[0]["mean"] is None:
        return "\n".join(lines)
    count = len(next(iter(columns.values()))) - 1
    means = " | ".join(f"{s['mean']:.1%}" for s in summaries)
    lines.append(f"| **mean of {count}** | {means} |")
    worst = [
        f"{s['worst']} {column_errors(c)[s['worst']]:.1%}"
        for s, c in zip(summaries, columns.values(), strict=True)
    ]
    lines.append("| **worst** | " + " | ".join(worst) + " |")
    return "\n".join(lines)


def header(report: dict) -> str:
    """The lines above the table: command, machine, date and settings."""
    m = report["machine"]
    flags = ", ".join(m["flags"]) or "none"
    return (
        f"command: {report['command']}\n"
        f"machine: {m['cpu']} ({m['cores']} cores; flags: {flags}); date: {m['date']}\n"
        f"{report['count']} MNIST test digits, seed {report['seed']}; product path: "
        f"{report['product_model']}, 280x280 pages resized {report['resize']}"
    )


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table (or --json)."""
    args = parse_args(argv)
    report = measure(args)
    for column, errors in report["columns"].items():
        report.setdefault("summary", {})[column] = summary(column_errors(errors))
    print(json.dumps(report, indent=1) if args.json else header(report) + "\n\n" + table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
