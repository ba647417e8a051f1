"""`test_model.py` / `mnist-read`: read the digits and numbers in image files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mnist_cnn.cli import add_common_flags, add_model_flags, expand_image_folders
from mnist_cnn.config import user_own_digits_dir
from mnist_cnn.data import NUM_CLASSES
from mnist_cnn.errors import UserError, run_cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every flag with its default in --help."""
    parser = argparse.ArgumentParser(
        description="Read the digit, or the number (one line of digits), in each image file. "
        "Any format Pillow reads works (PNG, JPEG, BMP, GIF, TIFF, WebP ...). Ruled or squared "
        "paper, a form's frame, specks and shadows are set aside; each digit found is made "
        "MNIST-like: light ink on black, cropped, scaled to a 20-pixel box and centred in 28x28. "
        "A file that cannot be read gives one 'error:' line and the exit status 1, "
        "and the other files are still read.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "images",
        nargs="+",
        type=Path,
        metavar="IMAGE",
        help="image files, or folders whose image files are all read (in name order)",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=1,
        choices=range(1, NUM_CLASSES + 1),
        metavar="K",
        help="also show the next most likely digits of each digit, K in all (1 to 10)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per image instead of text, the same shape for every "
        "picture: path, number, is_digit, size and digits (each candidate's digit, confidence, "
        "ten probabilities, box in the image's pixels, is_digit, ood_score and top_k); "
        "a file that cannot be read gives {path, error}",
    )
    parser.add_argument(
        "--single",
        action="store_true",
        help="read each whole image as one digit, without looking for several",
    )
    parser.add_argument(
        "--save-preprocessed",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the 28x28 PNG the model saw for each digit into DIR (created if needed): "
        "photo.png for a one-digit photo.jpg, photo-1.png, photo-2.png ... for a number",
    )
    parser.add_argument(
        "--correct",
        metavar="NUMBER",
        default=None,
        help="the right number for the one IMAGE (digits only): save each digit found, as the "
        "28x28 the model saw, into --own-digits DIR/<its right digit>/ (named by its content, "
        "with the crop of the picture beside it) to fine-tune on later: "
        "`train_model.py --start-from MODEL`. The number must have as many digits as were "
        "found; else nothing is saved",
    )
    parser.add_argument(
        "--own-digits",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"where --correct saves. None: {user_own_digits_dir()}",
    )
    parser.add_argument(
        "--accept-all",
        action="store_true",
        help="read every picture as a digit: turn off the 'not a digit' verdict",
    )
    add_model_flags(parser)
    add_common_flags(parser)
    return parser.parse_args(argv)


def percent_list(pairs: list[tuple[int, float]]) -> str:
    """`9 (0.1%), 7 (0.0%)`: runners-up as the text output writes them."""
    return ", ".join(f"{d} ({p:.1%})" for d, p in pairs)


def format_digit(digit, k: int) -> str:
    """One digit of a number and its confidence, then its runners-up when k > 1: `4: 99.8%`."""
    (best, *others) = digit.top_k(k)
    text = f"{best[0]}: {best[1]:.1%}"
    return text + (f" next: {percent_list(others)}" if others else "")


def format_text(reading, k: int = 1) -> str:
    """A picture's line: one digit as `name: 4 (99.8%)` (or `-4`), several as `name: 42 (4: 99.8%,
    2: 97.1%)`, nothing digit-like as `name: not a digit (looks most like 4, 92.5%)`; with
    k above 1, each digit's runners-up follow it (`next: 9 (0.1%)`)."""
    name, accepted = reading.source, reading.accepted
    if not accepted:
        best = reading.likeliest
        return f"{name}: not a digit (looks most like {best.digit}, {best.confidence:.1%})"
    if len(accepted) == 1:
        (best, *others) = accepted[0].top_k(k)
        line = f"{name}: {reading.number} ({best[1]:.1%})"  # the number: "-7" keeps its sign
        return line + (f"  next: {percent_list(others)}" if others else "")
    separator = "; " if k > 1 else ", "
    parts = separator.join(format_digit(digit, k) for digit in accepted)
    return f"{name}: {reading.number} ({parts})"


def unique_png_names(paths: list[Path]) -> list[str]:
    """A distinct `stem.png` per path; a stem already taken gets -2, -3 ... appended."""
    names: list[str] = []
    for path in paths:
        name, count = f"{path.stem}.png", 1
        while name in names:
            count += 1
            name = f"{path.stem}-{count}.png"
        names.append(name)
    return names


def digit_names(path: Path, count: int) -> list[Path]:
    """What each of a picture's `count` digits is saved as: photo.png, or photo-1.png, ..."""
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{n}{path.suffix}") for n in range(1, count + 1)]


def save_preprocessed(readings: list, out_dir: Path) -> list[list[Path]]:
    """Write each candidate's 28x28 as a PNG in `out_dir`; returns each reading's files.

    Raises UserError when the folder cannot be written.
    """
    from PIL import Image

    names = [digit_names(Path(r.source), len(r.digits)) for r in readings]
    files = iter(unique_png_names([name for own in names for name in own]))
    written = [[out_dir / next(files) for _ in own] for own in names]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for reading, targets in zip(readings, written, strict=True):
            for digit, target in zip(reading.digits, targets, strict=True):
                Image.fromarray(digit.image).save(target)
    except OSError as error:
        raise UserError(f"{out_dir}: cannot write the preprocessed digits: {error}") from None
    return written


def json_line(reading, k: int, saved: list[Path] | None) -> str:
    """Reading.to_dict as one JSON line, with where each digit's 28x28 was saved."""
    record = reading.to_dict(k)
    for digit, path in zip(record["digits"], saved or [], strict=False):
        digit["preprocessed"] = str(path)
    return json.dumps(record)


def correct(reader, path: Path, number: str, folder: Path, single: bool) -> None:
    """Read one picture, print its line, then save its digits as `number` says into `folder`
    and print one line per digit saved. Raises UserError (nothing saved) when the number
    does not fit the digits found or the picture cannot be read."""
    from mnist_cnn.own_digits import check_number, save_correction
    from mnist_cnn.preprocess import open_image

    check_number(number)
    reading = reader.read(path, single=single)
    print(format_text(reading))
    picture = open_image(path, str(path))
    for saved, new in save_correction(folder, picture, reading.digits, number, str(path)):
        done = "saved as" if new else "already saved; now filed as"  # it may have moved
        print(f"{saved}: {done} {saved.parent.name}")


def main(argv: list[str] | None = None) -> int:
    """Print one line per image (errors in place, in order); return 1 if any failed. With
    --correct, read the one image and save its digits as the right number says."""
    args = parse_args(argv)
    if args.correct is not None and len(args.images) != 1:
        raise UserError("--correct gives the right number of one picture: name one IMAGE")
    if args.correct is not None and (args.json or args.save_preprocessed):
        raise UserError("--correct prints what it saved, one line a digit: leave out "
                        "--json and --save-preprocessed")  # fmt: skip
    from mnist_cnn.reader import Reader  # after the flags: --help needs none of it

    images = expand_image_folders(args.images)
    reader = Reader(
        args.model_path, shipped=args.shipped, accept_all=args.accept_all, verbose=args.verbose
    )
    for note in reader.notes:
        print(note, file=sys.stderr)
    if args.correct is not None:
        folder = args.own_digits or user_own_digits_dir()
        correct(reader, args.images[0], args.correct, folder, args.single)
        return 0
    results = reader.read_many(images, single=args.single)
    good = [result for result in results if not isinstance(result, UserError)]
    saved = iter(save_preprocessed(good, args.save_preprocessed) if args.save_preprocessed else [])
    for path, result in zip(images, results, strict=True):
        if isinstance(result, UserError):
            print(f"error: {result}", file=sys.stderr)
            if args.json:
                print(json.dumps({"path": str(path), "error": str(result)}))
            continue
        own = next(saved, None)
        print(json_line(result, args.top_k, own) if args.json else format_text(result, args.top_k))
        if not args.json:  # the JSON carries them in `notes`
            for note in result.notes:
                print(f"note: {result.source}: {note}", file=sys.stderr)
    return 1 if len(good) < len(results) else 0


def run() -> None:
    """The console command: main() with one-line errors and exit codes."""
    run_cli(main)
