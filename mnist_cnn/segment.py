"""A picture of a number -> its digits: each one's MNIST-style 28x28 and its box, left to right.

Pure: an image in, candidates out. After preprocess.py's polarity and lighting steps it
  1. estimates the background locally when the light is uneven (a shadow's edge is lighting),
  2. erases long thin straight lines (ruled and squared paper, margins, a form's frame),
     keeping the digit's own strokes where they cross or run along a line,
  3. splits the rest into connected components (OpenCV), drops light and shadow at the
     picture's edge, merges the pieces of one digit, drops specks much smaller than the
     digits, and orders the digits left to right,
  4. with the caller's score (a model; this file has none), cuts touching digits and joins a
     digit's pieces where the model reads the result clearly better (`resegment`), and with
     the caller's pair score, reads a wide piece no cut won, or a narrower one the model is
     unsure of (`split_narrow_pairs`, many pictures at once), as two touching digits whole,
  5. finds a decimal point, commas and a leading minus among the marks too small to be digits,
  6. gives each digit preprocess.normalise, the MNIST normalisation a single digit gets.
Deciding which candidates are digits at all (an out-of-distribution score) is the caller's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image

from mnist_cnn.errors import NoDigitFoundError, SeveralLinesError, UserError
from mnist_cnn.preprocess import (
    DECODE_SCALE,
    DECODE_SIZE,
    NOISE_FLOOR,
    UNEVEN_LIGHT,
    above_floor,
    border,
    dark_ink,
    denoise,
    even_out,
    ink_strength,
    ink_up,
    levelled,
    normalise,
    normalise_pair,
    off_the_table,
    scaled_size,
    stroke_width,
    to_grayscale,
    to_mnist,
    to_uint8,
    uneven,
)

# OpenCV's thread pool costs more than it saves on pictures this size (a 280 px canvas takes
# about 1.5x as long with it on a busy 2-core machine), and TensorFlow has the cores anyway.
cv2.setNumThreads(0)

WORK_SIDE = DECODE_SIZE  # larger pictures are shrunk to this longer side: digits stay big
# Uneven light: the paper is a median of a copy BACKGROUND_SIDE pixels high (or wide, if
# narrower) over BACKGROUND_KERNEL pixels, a quarter of that: a digit's strokes are a minority.
BACKGROUND_SIDE = 128
BACKGROUND_KERNEL = 33
# A smaller picture is enlarged to BACKGROUND_SIDE first, its strokes with it (an MNIST-sized
# digit's 2-3 px become 10-14 px), so its median takes a wider square to stay mostly paper.
ENLARGED_KERNEL = 45
# Ink over more than this share of the picture is lit paper, not pen (grey paper between dark
# bands at the edges, which the border took for the background) ...
PAPER_SHARE = 0.5
# ... when its median lies below this share of the ink's full strength: a bold digit cropped
# tight covers much of its picture too, but at full strength.
PAPER_LEVEL = 0.5
# The light is uneven when the paper's border has its 10th and 90th percentiles further apart
# than preprocess.UNEVEN_LIGHT of the ink's contrast: a shadow over a third of the picture is
# invisible to preprocess.uneven, which only sees the spread of the middle half.
BORDER_PERCENTILES = (10, 90)
MIN_PAPER = 0.05  # paper darker than this (of full scale) is not divided by: noise, not light
# A picture cropped to its writing has no paper at its border, which the light, line and
# shadow rules read: when ink (CROP_INK of the contrast from the border's median, or more)
# reaches all four sides, meeting each at most CROP_TOUCHES times (strokes crossing it, not a
# page's rules or noise), covering at most CROP_BORDER of the border (not a table round a
# sheet), one connected stroke reaching them all, in a picture at most CROP_ASPECT times as
# wide as tall (one digit: a number cropped tight is not caught, its rules and frames being
# likelier), it gets a margin of its paper CROP_MARGIN of its longer side wide, as MNIST's
# 28x28 frame gives a 20-pixel digit.
CROP_INK = 0.12
CROP_TOUCHES = 3
CROP_BORDER = 0.5
CROP_ASPECT = 1.25
CROP_MARGIN = 0.15
# A straight run of ink at least this share of the picture's side along it may be a line ...
LINE_SHARE = 0.5
MAX_TILT_DEGREES = 1.0  # ... and it may be tilted this much (a phone photo of ruled paper)
LINE_GAP = 7  # ... and broken by gaps shorter than this (pixels): a faint rule is not always whole
# ... and it is a line when its ink across is at most this share of the pen's: printed rules
# are faint hairlines next to a pen, a 1 or a 7's bar is as thick as the pen that drew it.
LINE_THIN = 0.5
# A run from one side of the picture to the other (within OFF_THE_EDGE pixels), where the rest
# of the ink keeps CLEAR_OF_EDGES of the picture clear at both those sides, runs off the paper
# as a rule does and the writing does not, so up to LINE_THIN_THROUGH of the pen's ink across
# is a line: a notebook's margin rule beside digits drawn with a thin pen. (A 1 in a picture
# cropped tight runs from side to side too, but so does the writing beside it.)
LINE_THIN_THROUGH = 0.75
OFF_THE_EDGE = 2
CLEAR_OF_EDGES = 0.1
PEN_PERCENTILE = 90  # the pen's strong ink: its soft edges are not what the pen laid down
BARE_PERCENTILE = 25  # a rule's width is measured in its thinnest quarter, where no digit is
LINE_MARGIN = 2  # ink this many pixels thicker than a line, across it, is a stroke crossing it
MIN_PIXELS = 3  # components smaller than this are noise at any scale
# Components with at least this share of the largest one's pixels set the digits' height.
SUBSTANTIAL = 0.15
# Pieces overlapping by this share of the narrower one's width, and at most MERGE_GAP of the
# digit height apart vertically, are one digit (a 5's lifted bar, a 4 in two strokes).
MERGE_OVERLAP = 0.5
MERGE_GAP = 0.3
# ... or together at most this many times as tall as the taller piece: a 5 whose bottom came
# away. Two digits stacked on two lines span twice a digit's height and more.
ONE_DIGIT_SPAN = 1.6
SHORT_PIECE = 0.6  # a piece under this share of its neighbour's height is part of it ...
TOUCH_GAP = 0.1  # ... when above or below it, or side-on at most this share of that height away
# A component holding another at least this share of its height is a frame (see frames).
ENCLOSED = 0.3
# A component lying along this share of a side of the picture is light or shadow at its edge
# (the page's edge in a photo, a band of glare, a shadow's dark wedge), not a stroke: a
# digit, even cropped tight, touches a side over a stretch of its own width or height.
ALONG_EDGE = 0.75
# ... counting what lies within this share of the picture's shorter side of the edge (glare a
# few pixels in from it, beyond a dark strip of table) ...
EDGE_BAND = 0.03
# ... or along this share of the side, and for this share of its own length that way: a
# shadow's wedge is widest at the edge, a digit crossing it meets it over a pen's width.
EDGE_STRETCH = 0.15
EDGE_SHARE = 0.6
# A component stretched along a side whose pen is this share of its narrower side or more is a
# filled shape (a wedge of shadow, a strip of glare), whatever the model reads it as; a digit
# cropped tight is drawn with a pen (a bold 0 or a 7's bar about a fifth).
EDGE_SOLID = 0.35
SPECK = 0.2  # components whose longer side is below this share of the digit height are dirt
MIN_DIGIT_HEIGHT = 0.4  # groups lower than this share of the digit height are specks or dots
MAX_CANDIDATES = 32  # more than this is a page of text, not a number

# A decimal point is a blob between two digits with its bottom within BASELINE of the digit
# height of theirs, as round as ROUND (longer side over shorter) and POINT_SIZE pens across;
# a smaller blob there may be a point or dirt, and the reading says so (a note). Such a blob
# before the first digit (".5"), at most LEADING_GAP of the digit height from it with its
# bottom on that digit's, is noted and never read: noise, spatter and dotted lines put one
# there as often (reading it made 3.9% of MNIST-C's impulse noise digits 22.6% wrong), and a
# point dropped silently makes a number ten times too large.
BASELINE = 0.2
LEADING_GAP = 0.5
# Before the first digit a mark under LEADING_NOTE pens across goes unnoted: there the specks
# are mostly crumbs of the digit's own stroke (14 of the 10,000 MNIST test digits as 280x280
# files have one, 0.14 to 0.6 pens across; 5 at least half a pen).
LEADING_NOTE = 0.5
ROUND = 2.0
POINT_SIZE = (0.9, 3.0)
# A point is made with the pen that wrote the digits: its darkest pixel has at least POINT_INK
# of their strong ink (PEN_PERCENTILE), where dust and specks are often fainter; a fainter
# mark is noted. (Choosing data, 1,000 numbers of held-out training digits and 100 with a
# point: the points' darkest pixels 0.82 and more of the digits' strong ink, 5 of 8 specks
# read as points under 0.7; numbers right 964 -> 967, points 96 of 100 as before.)
POINT_INK = 0.7
# A round mark COLON_SIZE times a point's size above it, apart from it by half its size at
# least and the two within COLON_REACH of the digit height, makes it a colon's lower dot:
# 12:30 read as 12.30 is a number a hundred times too small (the choosing data's crumbs of
# strokes made such pairs too); the pieces of an erased rule above a point are thin, the
# point split by noise is not apart from itself, and a speck above the digits is too high.
COLON_SIZE = (0.6, 1.6)
COLON_REACH = 1.0
# A comma between digits ("3,14", a decimal comma, or "1,000", a thousands separator) is a
# mark COMMA_TALL of the digit height tall, no wider than tall (COMMA_LONG), that starts on the
# line, its top within COMMA_TOP of the digit height of the bottoms of the digits beside it,
# and reaches at least COMMA_BELOW under them; as wide as a point at least (POINT_SIZE), where
# a piece of an erased rule is a hairline, and COMMA_PENS pens tall, a head and a tail, where
# a point drawn low is round. It is read as written, a ",": which of the two it is, a picture
# cannot tell. (Taken for a digit before, "7,21" read 7921. Chosen on 600 such numbers of the
# training digits the pair model holds out: 554 read right, the other kinds unchanged.)
COMMA_TALL = (0.2, 0.6)
COMMA_LONG = 1.0
COMMA_PENS = 2.0
COMMA_TOP = 0.35
COMMA_BELOW = 0.1
# A round blob at most DOT of the digit height across, its middle beside every digit-tall
# component rather than under one, is kept out of the digits' grouping: a point, or dirt.
DOT = 0.35
# A minus is a level bar before the first digit: at least MINUS_LONG times as long as it is
# thick, MINUS_SPAN of the digit height long, at most MINUS_THICK pens thick, its middle within
# MINUS_MIDDLE of the digit height of the first digit's and at most MINUS_GAP of it before it.
# Such a mark only MINUS_SHORT times as long as thick (a short, thick dash, or a smudge) may be
# a minus or dirt, and the reading says so (a note) rather than drop a sign silently.
MINUS_LONG = 1.8
MINUS_SHORT = 1.25
MINUS_SPAN = (0.25, 1.2)
MINUS_THICK = 3.0
MINUS_MIDDLE = 0.25
MINUS_GAP = 1.0
# Components at least as flat as a minus (FLAT times as wide as tall) set no digit height.
FLAT = MINUS_LONG
# Recognition-based segmentation (Fujisawa, Nakano and Kurino 1992, "Segmentation methods for
# character recognition: from segmentation to document structure analysis"): a piece is cut,
# or two pieces joined, only where the classifier reads the result clearly better.
# A piece at least UNREAD_WIDE times as wide as the digit height (its own or the picture's
# typical one, the larger) may be two touching digits: a single MNIST digit is rarely wider
# than tall. A cut's sides are each at least SIDE_TALL of the piece's height (a 0 cut near its
# side leaves a short arc), no cut is read as two 1s (a V, a W or a U comes apart into two
# strokes; two touching 1s are narrower than that), and a cut with a side read as 1 needs a
# piece ONE_WIDE wide: a letter's upright (an n, an H, an R) reads as a 1 beside the rest.
# When the whole piece is not an accepted digit, a cut would make a number of what the model
# judged not a digit (a drawn face, a letter, a scribble), so it needs strong evidence: both
# sides accepted and SIDES_SURE confident, the cut through at most NECK_STROKES strokes (where
# two digits touch) and, for a piece under LOOP_WIDE digit heights, through no loop's inside
# (`opens_loop`: one closed shape, a 0 or a face's ring; two digits side by side that touch
# twice close a loop between them, and are wider) ...
UNREAD_WIDE = 1.05
SIDE_TALL = 0.75
ONE_WIDE = 1.2
SIDES_SURE = 0.95
NECK_STROKES = 2
LOOP_WIDE = 1.2
LOOP_TALL = 0.25  # a loop's inside is at least this share of the piece's height
# ... and when the whole is an accepted digit, the model's doubt is compared, one minus the
# confidence on a log10 scale (a single digit reads at 0.9999, two touching ones at 0.9 with
# each side at 0.99999), floored at DOUBT_FLOOR (float32's resolution near 1). A cut wins
# when the piece is at least WIDE digit heights wide, its sides SURE confident and each
# SURE_TALL of its height, the cut through at most SURE_STROKES strokes, and the whole's
# log-doubt exceeds the sides' (their confidences' product) by at least DOUBTS less
# DOUBT_PER_WIDTH for each digit height of width beyond WIDE (a wider piece is likelier two
# digits) ...
WIDE = 1.1
SURE = 0.99
SURE_TALL = 0.8
SURE_STROKES = 3
DOUBTS = 1.0
DOUBT_PER_WIDTH = 2.0
DOUBT_FLOOR = 1e-6
# ... or, at this width, which single digits reach about once in a hundred even slanted, when
# both sides are at least WIDEST_SURE confident and WIDEST_TALL of the piece's height, the cut
# opens no loop, and the sides' log-doubt is at most WIDEST_DOUBTS above the whole's. (0.5
# left a touching 27 drawn on the canvas as "2" with two freshly trained default models, its 7
# at 0.979 against the whole's 2 at 0.997; 1.0 reads the choosing data exactly as 0.5 did with
# the shipped model and with such a fresh one: docs/reading.md.)
WIDEST = 1.35
WIDEST_SURE = 0.9
WIDEST_TALL = 0.95
WIDEST_DOUBTS = 1.0
# (Chosen on 1,000 generated touching pairs of MNIST training digits, against 11,984 MNIST
# training digits at least 0.85 as wide as tall drawn alone, and 4,200 generated non-digits:
# synthetic.make_outliers and letters and symbols of the DejaVu faces, with the shipped
# model's confidences.)
SIDE_WIDE = 1.35  # ... and neither side is wider than this many times its height
CUT_FROM = 0.2  # cuts are tried between this share of the piece's width from either side ...
CUTS = 3  # ... at this many of its projection profile's lowest minima (Congedo et al. 1995)
MAX_SLANT = 0.5  # the writing's slant (columns per row) the cuts follow, at most
SIDE_INK = 0.12  # each side of a cut holds at least this share of the piece's ink
SAME_CUT = 0.02  # cuts whose sides differ by less than this share of the ink are one
CUT_SIDE = 64  # cuts are found on a copy about this many pixels on its longer side
# Neighbouring pieces at most this share of the digit height apart side-on, together at most
# MERGED_WIDE of it wide, may be one digit in two strokes (a 4 whose bar stops short) ...
MERGE_NEAR = 0.2
# The options are scored on copies at most this many pixels on their longer side: normalising
# a piece costs as much as its pixels, and MNIST's 20 px box needs no more than this. The
# pieces an option made are read that way in the end too (a cut's side read at full size
# could read otherwise and be judged not a digit); a piece found as it is, at full size, as
# `--single` reads a digit.
SCORED_SIDE = 56
MERGED_WIDE = 1.3
# ... and are one when the joined piece is an accepted digit whose confidence beats the
# product of the pieces' confidences by this much: two digits each read well stay two (and
# when neither piece is a digit, it reads SIDES_SURE: a number is not made of non-digits).
MERGE_MARGIN = 0.15
# ... or when they nearly touch (at most STROKES_GAP digit heights apart side-on) and end at
# different heights (bottoms at least STROKES_OFFSET of it apart: a 4's bar stops where its
# upright goes on down, where two digits side by side share a baseline), and the joined piece
# reads as a digit at least STROKES_SURE: both strokes of such a 4 read as digits (6 and 1)
# as surely as the 4 does, which no margin over their product lets through. (Chosen on
# numbers of held-out MNIST training digits, a third with a 4 in two strokes: 51 of 53
# pieces of one digit joined, against 34, and none of 515 pairs of two digits.)
STROKES_GAP = 0.05
STROKES_OFFSET = 0.2
STROKES_SURE = 0.95
PIECES_PER_DIGIT = 4  # a digit is rarely in more pieces: more pieces than 4 * 32 is a page
# Reading two touching digits whole (Hochuli, Oliveira, Britto and Sabourin 2018, "Handwritten
# digit segmentation: Is it still necessary?"): a piece wide enough to be cut (`may_cut`) that
# no cut won is read by the caller's pair model (pair.py: 100 pairs, one digit, no digit) and
# becomes two digits when the model is at least PAIR_SURE of one pair, or PAIR_SURE_READ when
# the digit model reads the whole as an accepted digit at least WHOLE_SURE confident.
# (These and the narrow pieces' constants below were chosen for the shipped pair model on
# 1,000 generated touching pairs of the MNIST training digits it held out, 5,000 of those
# digits alone and 3,896 non-digits; PAIR_SURE 0.7 read 9 pairs in 1,000 more and 7 more
# non-digits as numbers. PAIR_SURE_READ, 0.97 until the rules on strokes, was chosen again
# with them: 0.95 read 371 of 400 touching pairs against 369, 0.9 as 0.95, the single
# digits, letters beside numbers and non-digits alike. See docs/reading.md.)
PAIR_CLASSES = 100  # the pair model's first classes are the pairs 00..99 ("ab" = 10 a + b)
NO_DIGIT = PAIR_CLASSES + 1  # ... then one digit alone, then no digit at all
PAIR_SURE = 0.8
PAIR_SURE_READ = 0.95
# A wide piece that the digit model judges not a digit becomes two digits where the pair
# model gives "no digit" at most UNREAD_NO_DIGIT, and then at PAIR_SURE_UNREAD of one pair:
# its verdict on digits, more than its choice among the pairs, tells a touching pair from a
# letter or a scribble. (On the choosing data, against 0.9 without that verdict: 13 more
# pairs in 1,000, 3 more of the 3,896 non-digits as numbers, the singles alike. The same for
# narrow pieces too read 24 and 7, 0.7 20 and 6, 0.5 29 and 9; a verdict at 0.05 3 more
# non-digits. Narrow pieces keep NARROW_SURE_UNREAD: single digits are narrow pieces.)
UNREAD_NO_DIGIT = 0.02
PAIR_SURE_UNREAD = 0.6
WHOLE_SURE = 0.999
# Two readings are strokes as often as digits: 11 (a V, a W or a U is two strokes) and a 1
# before the very digit the digit model reads the whole as, NARROW_WHOLE sure (a stroke inside
# or beside a digit reads as a 1: a 0 with a stroke inside as 10, a 0 with a long lead-in as
# 10). They are taken only where the digit model accepts the whole and the split's sides stand
# apart (`stand_apart`): each at least SURE_TALL of the piece's height, as the sides of a cut
# of an accepted digit must be, and the split through no loop's inside. (On the choosing data:
# 361 of 400 touching pairs read right against 355, 2 of 6 touching 11s and a 13, 14, 15 and
# 18 more; the 5,000 single digits and the 4,000 non-digits alike. Without the sides' test a
# 0 with a long lead-in split as 10; with SIDE_TALL and a whole judged not a digit allowed, two
# MNIST test digits split: docs/reading.md.)
TWO_ONES = 11
# ... but two 1s are two strokes that need not be as tall as each other: a 1 written beside
# another may be a third shorter, or start lower (on the choosing data, 2 of the 5 touching
# 11s that read as one 1 had a side 0.79 and 0.69 of the piece's height; with ONES_TALL 0.65
# for 11 alone, 369 of 400 touching pairs read right against 367, the 5,000 single digits
# and the letters beside numbers alike, and two of the 4,000 non-digits read as 1 before
# read as 11).
ONES_TALL = 0.65
# A wide piece the digit model accepts, that no cut won and the pair model is not sure enough
# of, is still cut where a candidate cut's sides are both accepted digits that read as the very
# pair the pair model finds likeliest, at least AGREED_SURE, and the cut opens no loop: two
# views of the piece agree (never for a reading that may be strokes: `may_be_strokes`).
# (On the choosing data: 364 of 400 touching pairs against 361, the single digits alike, one
# of 4,000 non-digits, read as a digit before, read as two; taken also where the whole is
# judged not a digit, 4 more non-digits became numbers.)
AGREED_SURE = 0.5
# A piece a cut won is read by the pair model too, and read as its pair instead when that is
# another pair at least PAIR_OVER_CUT sure: a cut between touching strokes can leave one
# side a fragment that reads as another digit (90 as 97, 06 as 96).
PAIR_OVER_CUT = 0.95
# A piece too narrow to cut but at least PAIR_NARROW of the digit height wide may be two
# touching digits too, most with a 1 or a 7 (71, 41, 17), whose cut the sides' readings
# cannot tell from a digit's tail: the pair model reads it, and it becomes two digits when
# the model is at least NARROW_SURE of one pair (NARROW_SURE_UNREAD where the digit model
# judges it not a digit: a letter's upright beside a bowl reads as 1, a B as 13, and single
# digits are narrow pieces), and NARROW_SURE_READ where the digit model
# reads it as one digit NARROW_WHOLE sure (a 0 with a stroke inside reads as 10 at 0.97).
# Pieces the digit model reads NARROW_ASKED sure are not asked: nearly every single digit is
# a narrow piece, and the pair model costs a call each.
PAIR_NARROW = 0.5
NARROW_ASKED = 0.9999
NARROW_WHOLE = 0.99
NARROW_SURE = 0.9
NARROW_SURE_UNREAD = 0.95
NARROW_SURE_READ = 0.99


@dataclass(frozen=True)
class Candidate:
    """One thing that may be a digit: its MNIST-style uint8 (28, 28) and where it was found;
    `reading`, float (10,), the pair model's probabilities when it was read as one of two
    touching digits (the caller's own reading of `digit` otherwise)."""

    digit: np.ndarray  # uint8 (28, 28), light ink on black, as preprocess.to_mnist makes
    box: tuple[int, int, int, int]  # (left, top, right, bottom) in the original image's pixels
    reading: np.ndarray | None = None


@dataclass(frozen=True)
class Symbol:
    """A decimal point ".", a comma "," or a leading minus "-" in a number, and where it was
    found."""

    text: str
    box: tuple[int, int, int, int]  # (left, top, right, bottom) in the original image's pixels


@dataclass(frozen=True)
class Found:
    """What find_number finds: the digit candidates left to right, the number's symbols,
    and notes on what could not be told apart (a point from a speck)."""

    digits: list[Candidate]
    symbols: list[Symbol]
    notes: list[str]


# A scoring function for recognition-based segmentation: uint8 (N, 28, 28) digits ->
# (the ten digits' probabilities float (N, 10), accepted as a digit bool (N,)). The caller's
# model: this file has none.
Score = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
# The caller's pair model: uint8 (N, *preprocess.PAIR_SHAPE) wide pieces (preprocess.
# normalise_pair) -> probabilities float (N, C), the first PAIR_CLASSES the pairs 00..99 and
# the rest what is not a pair (one digit, no digit).
PairScore = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Part:
    """A digit candidate at the work size: its own pixels bool (h, w) in its box (left, top,
    right, bottom; right and bottom exclusive), and the pair model's reading float (10,) when
    it is one of two touching digits read whole."""

    own: np.ndarray
    box: tuple[int, int, int, int]
    reading: np.ndarray | None = None

    def own_ink(self, ink: np.ndarray, most: int | None = None) -> np.ndarray:
        """Its own pixels' ink float32 (h, w) from the work-size ink float (H, W); with `most`,
        shrunk to at most that many pixels on its longer side (cheaper to normalise)."""
        left, top, right, bottom = self.box
        own = np.where(self.own, ink[top:bottom, left:right], 0.0).astype(np.float32)
        if most is not None and max(own.shape) > most:
            size = scaled_size(own.shape, most / max(own.shape))
            own = cv2.resize(own, size, interpolation=cv2.INTER_AREA)
        return own

    def digit(self, ink: np.ndarray, most: int | None = None) -> np.ndarray:
        """Its MNIST-style uint8 (28, 28) from the work-size ink float (H, W) (own_ink's
        `most` applies)."""
        return normalise(self.own_ink(ink, most))

    def pair_input(self, ink: np.ndarray) -> np.ndarray:
        """Its uint8 PAIR_SHAPE for the pair model (preprocess.normalise_pair), its ink first
        shrunk to at most 2 * SCORED_SIDE pixels on its longer side."""
        return normalise_pair(self.own_ink(ink, 2 * SCORED_SIDE))

    @property
    def width(self) -> int:
        """Its box's width in work pixels."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        """Its box's height in work pixels."""
        return self.box[3] - self.box[1]


def shrink(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Grey float (H, W) at most WORK_SIDE on its longer side, and the pixels per work pixel."""
    longer = max(gray.shape)
    if longer <= WORK_SIDE:
        return gray, 1.0
    scale = WORK_SIDE / longer
    return cv2.resize(
        gray, scaled_size(gray.shape, scale), interpolation=cv2.INTER_AREA
    ), 1.0 / scale


def paper_light(gray: np.ndarray) -> np.ndarray:
    """The paper's brightness, float (h, w) on a copy of grey float (H, W) BACKGROUND_SIDE high
    (shrunk, or enlarged from a smaller picture).

    A median over a square wider than any stroke: ink and rulings are a minority there,
    whatever their colour, and the median keeps a shadow's edge where it is.
    """
    height, width = gray.shape
    scale = BACKGROUND_SIDE / min(height, width)
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    shrinking = scale <= 1.0
    resample = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    small = cv2.resize(to_uint8(gray), small_size, interpolation=resample)
    kernel = BACKGROUND_KERNEL if shrinking else ENLARGED_KERNEL
    # medianBlur repeats the edge row, which would make a rule along the edge the paper.
    half = kernel // 2
    padded = cv2.copyMakeBorder(small, half, half, half, half, cv2.BORDER_REFLECT_101)
    # It takes any odd size for 8-bit images only; 1/255 is far below the ink floor.
    median = cv2.medianBlur(padded, kernel)[half:-half, half:-half]
    return median.astype(np.float32) / 255.0


def spread(values: np.ndarray) -> float:
    """How far apart the BORDER_PERCENTILES of `values` lie."""
    low, high = np.percentile(values, BORDER_PERCENTILES)
    return float(high - low)


def shadowed(gray: np.ndarray) -> np.ndarray | None:
    """The paper's light (`paper_light`) when much of its border is in another light, or None."""
    edge = border(gray)
    level = np.median(edge)  # in gray's dtype, so the differences round as gray - level would
    contrast = float(max(gray.max() - level, level - gray.min()))
    # The percentiles lie within the border's range: a border that even needs no percentiles.
    if np.ptp(edge) <= UNEVEN_LIGHT * contrast or spread(edge) <= UNEVEN_LIGHT * contrast:
        return None  # the median of the paper cannot differ more than the paper does: skip it
    paper = paper_light(gray)
    return paper if spread(border(paper)) > UNEVEN_LIGHT * contrast else None


def local_background(gray: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """Grey float (H, W) -> ink-up float (H, W), ink measured against the paper around it.

    The ink's colour is the larger departure from the paper (`paper_light`), and the ink is
    divided by the light the paper gets, so a digit reads the same in a shadow as in full light.
    """
    height, width = gray.shape
    paper = cv2.resize(paper, (width, height), interpolation=cv2.INTER_LINEAR)
    above, below = gray - paper, paper - gray
    if below.max() > above.max():  # dark ink: its darkness over the paper's brightness
        return np.clip(below / np.maximum(paper, MIN_PAPER), 0.0, 1.0)
    return np.clip(above / np.maximum(1.0 - paper, MIN_PAPER), 0.0, 1.0)


def without_lit_paper(ink: np.ndarray, name: str) -> np.ndarray:
    """Ink float32 (H, W) in [0, 1] with lit paper taken out: when ink covers more than
    PAPER_SHARE of the picture at a median below PAPER_LEVEL, that median is the paper's
    level, and the ink is measured from it. Raises NoDigitFoundError when nothing is left."""
    on = ink > 0
    if on.mean() <= PAPER_SHARE:
        return ink
    paper = float(np.median(ink[on]))
    if paper >= PAPER_LEVEL:
        return ink
    return above_floor(np.clip((ink - paper) / (1.0 - paper), 0.0, 1.0), NOISE_FLOOR, name)


def touches(side: np.ndarray) -> int:
    """How many separate runs of True the bool (L,) `side` holds."""
    return int(np.count_nonzero(np.diff(side.astype(np.int8), prepend=0) == 1))


def cropped_to_writing(gray: np.ndarray) -> bool:
    """Whether grey float (H, W) is a digit cropped to its ink (see CROP_MARGIN)."""
    height, width = gray.shape
    if width > CROP_ASPECT * height:
        return False
    edge = border(gray)
    paper = float(np.median(edge))
    dark = dark_ink(gray, paper)
    contrast = paper - float(gray.min()) if dark else float(gray.max()) - paper

    def inked(pixels: np.ndarray) -> np.ndarray:
        return (paper - pixels if dark else pixels - paper) > CROP_INK * contrast

    # Side by side, stopping at the first without ink: most pictures have paper along one.
    sides = (gray[0], gray[-1], gray[:, 0], gray[:, -1])
    if contrast <= 0 or not all(1 <= touches(inked(side)) <= CROP_TOUCHES for side in sides):
        return False
    if float(inked(edge).mean()) > CROP_BORDER:
        return False
    # One stroke's component reaches every side: specks or shapes at the sides do not.
    _, labels = cv2.connectedComponents(inked(gray).astype(np.uint8), connectivity=8)
    edges = (labels[0], labels[-1], labels[:, 0], labels[:, -1])
    common = set.intersection(*(set(np.unique(edge[edge > 0]).tolist()) for edge in edges))
    return bool(common)


def with_paper_margin(gray: np.ndarray) -> tuple[np.ndarray, int]:
    """Grey float (H, W) with a margin of its paper (its border's median) added on each side
    where it is cropped to its writing (`cropped_to_writing`), and the margin's width in
    pixels (0: the same array)."""
    if not cropped_to_writing(gray):
        return gray, 0
    margin = max(1, round(CROP_MARGIN * max(gray.shape)))
    paper = float(np.median(border(gray)))
    padded = cv2.copyMakeBorder(gray, *[margin] * 4, cv2.BORDER_CONSTANT, value=paper)
    return padded, margin


def ink_map(image: Image.Image, name: str) -> tuple[np.ndarray, float, int]:
    """Ink float32 (H, W) in [0, 1] at the work size, the original pixels per work pixel, and
    the paper margin added on each side of a picture cropped to its writing (work pixels).

    Light that changes smoothly takes preprocess.py's steps unchanged (so a single digit reads
    as it always has); a shadow's edge on the border takes local_background. Raises
    NoDigitFoundError when nothing stands out from the paper.
    """
    gray, scale = shrink(to_grayscale(image))
    gray, margin = with_paper_margin(off_the_table(gray))
    gray, level = levelled(denoise(gray))
    flipped, paper = ink_up(gray, level), shadowed(gray)
    if paper is not None:
        flipped = local_background(gray, paper)
    elif uneven(flipped):
        flipped = even_out(flipped)
    ink = without_lit_paper(ink_strength(flipped, name), name)
    return ink, scale * float(image.info.get(DECODE_SCALE, 1.0)), margin


def straight_runs(mask: np.ndarray) -> np.ndarray:
    """Ink uint8 (H, W) on level runs at least LINE_SHARE of the width long, slightly tilted."""
    length = max(2, round(LINE_SHARE * mask.shape[1]))
    drift = math.ceil(length * math.tan(math.radians(MAX_TILT_DEGREES)) / 2)
    # Cheap first: a run needs `length` ink pixels within some 2 * drift + 1 rows, so only
    # the rows from the first to the last such row (and the drift beyond) take the costly
    # morphology below: a digit's upright stroke is a few rows of a transposed canvas.
    # OpenCV's row sums: several times as fast as NumPy's on a 280x280 uint8 mask.
    ink_per_row = cv2.reduce(mask, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
    rows = np.convolve(ink_per_row, np.ones(2 * drift + 1), "same")
    (candidates,) = np.nonzero(rows >= length)
    runs = np.zeros_like(mask)
    if len(candidates) == 0:
        return runs
    first, last = candidates[0], candidates[-1] + 1
    top, bottom = max(0, first - drift), min(len(mask), last + drift)
    if not could_hold_a_run(mask[top:bottom], length):
        return runs
    # Thickening across the line first lets a slightly tilted line hold a level run, and
    # closing short gaps along it keeps a faint rule whole where JPEG or the paper broke it.
    band = cv2.dilate(mask[top:bottom], np.ones((2 * drift + 1, 1), np.uint8))
    band = cv2.morphologyEx(band, cv2.MORPH_CLOSE, np.ones((1, LINE_GAP), np.uint8))
    opened = opened_along_rows(band, length)
    runs[first:last] = opened[first - top : last - top] & mask[first:last]
    return runs


def opened_along_rows(mask: np.ndarray, length: int) -> np.ndarray:
    """uint8 (H, W) 0/1 `mask` opened by a 1 x `length` line (`length` < 65,536): the pixels of
    OpenCV's morphologyEx(MORPH_OPEN) with np.ones((1, length)), outside ink to its erosion and
    paper to its dilation, as two of OpenCV's box sums. A box sum costs the same at any length,
    OpenCV's erosion grows with it: 0.13 against 0.43 ms on a 280x280 canvas (length 140) and
    0.27 against 1.9 ms on a 1,000-pixel-wide one, on a 2-core Intel Xeon."""
    # Eroded where no gap lies in the window: the zeros outside are no gaps, so it counts as ink.
    box = {"ddepth": cv2.CV_16U, "ksize": (length, 1), "normalize": False}
    gaps = cv2.boxFilter(1 - mask, borderType=cv2.BORDER_CONSTANT, **box)
    eroded = (gaps == 0).astype(np.uint8)
    return (cv2.boxFilter(eroded, borderType=cv2.BORDER_CONSTANT, **box) > 0).astype(np.uint8)


def could_hold_a_run(mask: np.ndarray, length: int) -> bool:
    """Whether uint8 (H, W) ink could hold a level run `length` pixels long after straight_runs'
    gap closing: not when its ink spans fewer columns, unless it comes within LINE_GAP of a
    side, where OpenCV's erosion counts the outside as ink and shorter runs can survive."""
    (columns,) = np.nonzero(mask.any(axis=0))
    if len(columns) == 0:
        return False
    near_a_side = columns[0] <= LINE_GAP or columns[-1] >= mask.shape[1] - 1 - LINE_GAP
    return near_a_side or columns[-1] - columns[0] + 1 >= length


def across_run(own: np.ndarray, ink: np.ndarray) -> tuple[float, float]:
    """A level run's (bool (h, w), its box) ink and pixel count across it, where it is bare."""
    # Digits crossing a rule thicken some of its columns: its thinnest quarter is bare rule.
    columns = own.any(axis=0)
    # In the ink's float32, as each was taken alone (a pixel count is exact in it).
    across = np.stack([(ink * own).sum(axis=0), own.sum(axis=0, dtype=ink.dtype)])[:, columns]
    mass, width = np.percentile(across, BARE_PERCENTILE, axis=1)
    return float(mass), float(width)


def labelled(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's 8-connected components of uint8 (H, W): labels (H, W), 0 the background, and
    stats int32 (N + 1, 5) of x, y, width, height and area, the background's first.

    Labels are uint16 when no picture of this size can hold more components than uint16
    counts (one per 2x2 block at most): OpenCV labels into uint16 about 2.5 times as fast
    as into int32 on a 280x280 canvas (0.19 against 0.50 ms, measured on a 2-core EPYC).
    """
    most = -(-mask.shape[0] // 2) * -(-mask.shape[1] // 2)
    ltype = cv2.CV_16U if most < np.iinfo(np.uint16).max else cv2.CV_32S
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=ltype)
    return labels, stats


def among(labels: np.ndarray, chosen: Sequence[int] | np.ndarray) -> np.ndarray:
    """bool, the shape of int `labels` (non-negative): where the label is one of `chosen`.
    As np.isin, by a lookup table: several times as fast on a labelled picture."""
    table = np.zeros(int(labels.max(initial=0)) + 1, bool)
    chosen = np.asarray(chosen, np.int64)
    table[chosen[chosen < len(table)]] = True
    return table[labels]


def thin_lines(
    runs: np.ndarray, ink: np.ndarray, pen: float, off_paper: bool = False
) -> tuple[np.ndarray, float]:
    """The horizontal runs (uint8 (H, W)) with less ink across them than LINE_THIN of the pen,
    or, where `off_paper` (the writing is clear of the left and right sides), LINE_THIN_THROUGH
    for a run from one of those sides to the other.

    Ink across is the ink (float (H, W) in [0, 1]) summed across the run: a ruling is faint
    and thin, so a pale, blurred rule still counts as thin. Also returns the widest line's
    width in pixels (0.0 when there are none).
    """
    lines = np.zeros_like(runs)
    (rows,) = np.nonzero(runs.any(axis=1))
    if len(rows) == 0:
        return lines, 0.0
    span = np.s_[rows[0] : rows[-1] + 1]  # runs are a few rows: label only those
    labels, stats = labelled(runs[span])
    ink = ink[span]
    keep, widest = [], 0.0
    for label, (left, top, width, height, _) in enumerate(stats[1:], start=1):
        box = np.s_[top : top + height, left : left + width]
        mass, across = across_run(labels[box] == label, ink[box])
        ends = left <= OFF_THE_EDGE and left + width >= runs.shape[1] - OFF_THE_EDGE
        through = off_paper and ends
        if mass <= (LINE_THIN_THROUGH if through else LINE_THIN) * pen:
            keep.append(label)
            widest = max(widest, across)
    if keep:
        lines[span] = among(labels, keep)
    return lines, widest


def erase_level_lines(
    mask: np.ndarray, runs: np.ndarray, ink: np.ndarray, pen: float, off_paper: bool = False
) -> np.ndarray:
    """Remove the thin horizontal lines among `runs` from `mask`, keeping strokes across them
    (`off_paper` as thin_lines takes it)."""
    lines, width = thin_lines(runs, ink, pen, off_paper)
    if width == 0.0:
        return mask
    # Ink thicker than a line across it (a stroke crossing, or lying along, the line) stays.
    across = math.ceil(width) + LINE_MARGIN
    # Outside the picture is no ink: a rule along its edge is not thick there.
    strokes = cv2.morphologyEx(
        mask,
        cv2.MORPH_OPEN,
        np.ones((across, 1), np.uint8),
        borderType=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return mask & ~(lines & ~strokes)


def erase_lines(ink: np.ndarray) -> np.ndarray:
    """The uint8 (H, W) 0/1 mask of float `ink` less long thin straight lines, level or upright."""
    mask = (ink > 0).astype(np.uint8)
    level, upright = straight_runs(mask), straight_runs(mask.T.copy()).T
    if not (level.any() or upright.any()):
        return mask
    rest = (mask & ~level & ~upright).astype(bool)
    if not rest.any():
        rest = mask.astype(bool)
    # The pen's ink across a stroke (its width times its strong ink), from the ink not on a
    # long straight run: a ruling is then thin next to it, and a digit's own long stroke (a 1,
    # soft-edged as it may be) is not.
    pen = stroke_width(rest) * float(np.percentile(ink[rest], PEN_PERCENTILE))
    if level.any():
        erased = erase_level_lines(mask, level, ink, pen, clear_of_edges(rest))
        if upright.any() and erased is not mask:
            # On squared paper the rules across a digit lengthen its columns into upright
            # runs, which join the upright rules beside it into one thick "stroke" that
            # stays: the upright runs are found again without the level rules.
            upright = straight_runs(erased.T.copy()).T
        mask = erased
    if not upright.any():
        return mask
    off_paper = clear_of_edges(rest.T)
    flipped = erase_level_lines(mask.T.copy(), upright.T.copy(), ink.T.copy(), pen, off_paper)
    return flipped.T.copy()


def clear_of_edges(writing: np.ndarray) -> bool:
    """Whether bool (H, W) ink keeps CLEAR_OF_EDGES of the width clear at the left and right."""
    (columns,) = np.nonzero(writing.any(axis=0))
    margin = CLEAR_OF_EDGES * writing.shape[1]
    return len(columns) > 0 and columns[0] >= margin and columns[-1] < writing.shape[1] - margin


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of uint8 (H, W): labels (H, W) (see labelled), and (N, 6) stats
    label, x, y, w, h, area for the N components of at least MIN_PIXELS (label = row index + 1
    before filtering).
    """
    labels, stats = labelled(mask)
    stats = np.column_stack([np.arange(len(stats)), stats])[1:]  # label first, background out
    return labels, stats[stats[:, 5] >= MIN_PIXELS]


def digit_height(stats: np.ndarray) -> float:
    """The typical digit height in pixels from components' stats int (N, 6) (label, left, top,
    width, height, pixels): the median height of the substantial ones, leaving out flat ones
    (FLAT) unless all are: with one digit beside a minus, or a 5's bar drawn apart, the
    median of two would be halfway between a bar's height and a digit's. (When all are flat,
    as for a minus beside two touching digits, it is that halfway height again.)"""
    substantial = stats[stats[:, 5] >= SUBSTANTIAL * stats[:, 5].max()]
    upright = substantial[substantial[:, 3] < FLAT * substantial[:, 4]]
    return float(np.median((upright if len(upright) else substantial)[:, 4]))


def frames(stats: np.ndarray) -> np.ndarray:
    """bool (N,): components (rows of `stats`) whose box holds another one of some size.

    A digit never holds another digit: what does is a form's box, or a frame drawn around the
    number, left over when its sides were too short or too thick to be erased as lines.
    """
    left, top = stats[:, 1], stats[:, 2]
    right, bottom = left + stats[:, 3], top + stats[:, 4]
    holds = (
        (left[:, None] < left[None, :])
        & (top[:, None] < top[None, :])
        & (right[:, None] > right[None, :])
        & (bottom[:, None] > bottom[None, :])
        & (stats[None, :, 4] >= ENCLOSED * stats[:, None, 4])
    )
    return holds.any(axis=1)


def coverage(band: np.ndarray, count: int) -> np.ndarray:
    """int (count,): for each label, at how many positions along a side it appears in `band`,
    the labels int (depth, L) of the rows nearest that side (along its length L)."""
    _, positions = np.nonzero(band)  # only the ink: the band is mostly paper
    pairs = np.unique(band[band > 0].astype(np.int64) * band.shape[1] + positions)
    return np.bincount(pairs // band.shape[1], minlength=count)[:count]


def along_edges(labels: np.ndarray, stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two bool (N,) over the components (rows of `stats`) that may be light or shadow at the
    picture's edge. First, those lying, within EDGE_BAND of a side, along at least ALONG_EDGE
    of it (a strip of glare a few pixels in from the edge): never a digit. Second, the others
    along EDGE_STRETCH of a side and for EDGE_SHARE of their own extent that way (a shadow's
    wedge, widest at the edge; a strip that fades out), which a digit cropped tight can be too
    (a 7's bar along the top): see `edge_light`."""
    count = int(stats[:, 0].max()) + 1 if len(stats) else 1
    height, width = labels.shape
    depth = max(1, round(EDGE_BAND * min(height, width)))
    sides = (
        (labels[:depth], stats[:, 3]),
        (labels[-depth:], stats[:, 3]),
        (labels[:, :depth].T, stats[:, 4]),
        (labels[:, -depth:].T, stats[:, 4]),
    )
    along, stretched = np.zeros(len(stats), bool), np.zeros(len(stats), bool)
    for band, extent in sides:
        if not band.any():
            continue  # no ink along this side (a drawing's margin): nothing there to count
        met = coverage(band, count)[stats[:, 0]]
        length = band.shape[1]
        along |= met >= ALONG_EDGE * length
        stretched |= (met >= EDGE_STRETCH * length) & (met >= EDGE_SHARE * extent)
    return along, stretched & ~along


def edge_light(
    labels: np.ndarray, stats: np.ndarray, ink: np.ndarray, score: Score | None
) -> np.ndarray:
    """bool (N,): the components (rows of `stats`) that are light or shadow at the picture's
    edge (`along_edges`). One only stretched along a side is light unless `score` accepts it
    as a digit and it is drawn with a pen, not filled (EDGE_SOLID): a digit cropped tight;
    without a score, it is light."""
    along, stretched = along_edges(labels, stats)
    if score is None or not stretched.any():
        return along | stretched
    pieces = []
    for row in np.flatnonzero(stretched):
        label, left, top, width, height = stats[row, :5]
        own = labels[top : top + height, left : left + width] == label
        # A filled shape is light whatever the model reads it as: no need to ask it.
        if stroke_width(own) / min(own.shape) < EDGE_SOLID:
            pieces.append((row, Part(own, (left, top, left + width, top + height))))
    if pieces:
        worth, _ = readings([part for _, part in pieces], ink, score)
        stretched[[row for row, _ in pieces]] &= worth <= 0
    return along | stretched


def dots(stats: np.ndarray, height: float) -> np.ndarray:
    """bool (N,): components (rows of `stats`) that are round blobs at most DOT of the digit
    `height` across whose middle is beside, not within, the columns of every component at
    least MIN_DIGIT_HEIGHT of it tall (a decimal point between digits, or dirt)."""
    longer, shorter = np.maximum(stats[:, 3], stats[:, 4]), np.minimum(stats[:, 3], stats[:, 4])
    tall = stats[stats[:, 4] >= MIN_DIGIT_HEIGHT * height]
    middle = stats[:, 1] + stats[:, 3] / 2
    under = (middle[:, None] > tall[None, :, 1]) & (
        middle[:, None] < tall[None, :, 1] + tall[None, :, 3]
    )
    return (longer <= DOT * height) & (longer <= ROUND * shorter) & ~under.any(axis=1)


def commas_among(
    boxes: np.ndarray, digits: np.ndarray, height: float, pen: float = 0.0
) -> np.ndarray:
    """bool (N,): which marks' boxes int (N, 4) are commas (COMMA_TALL, COMMA_LONG, COMMA_TOP,
    COMMA_BELOW) in the gap between two of the digits' boxes int (D, 4), their middle right of
    the last digit to start left of it and left of the first to start right of it, at least
    POINT_SIZE[0] times the `pen` wide and COMMA_PENS times it tall (`pen` 0: their shape
    alone, before the pen is known). Boxes are (left, top, right, bottom), the digit `height`
    and the pen width in work pixels."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    digits = np.asarray(digits, np.float64).reshape(-1, 4)
    if len(boxes) == 0 or len(digits) == 0:
        return np.zeros(len(boxes), bool)
    digits = digits[np.lexsort(digits.T[::-1])]  # by left edge (then top, right, bottom)
    middle = (boxes[:, 0] + boxes[:, 2]) / 2
    before = np.searchsorted(digits[:, 0], middle, side="left") - 1
    after = np.searchsorted(digits[:, 0], middle, side="right")
    between = (before >= 0) & (after < len(digits))
    left, right = digits[np.maximum(before, 0)], digits[np.minimum(after, len(digits) - 1)]
    baseline = (left[:, 3] + right[:, 3]) / 2
    tall, wide = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    # Within a digit's columns, a piece that came apart from it (a 1's foot, a 7's stem) has a
    # comma's shape as often.
    return (
        between
        & (left[:, 2] <= middle)
        & (COMMA_TALL[0] * height <= tall)
        & (tall <= COMMA_TALL[1] * height)
        & (POINT_SIZE[0] * pen <= wide)
        & (wide <= tall / COMMA_LONG)
        & (tall >= COMMA_PENS * pen)
        & (np.abs(boxes[:, 1] - baseline) <= COMMA_TOP * height)
        & (boxes[:, 3] - baseline >= COMMA_BELOW * height)
    )


def commas(stats: np.ndarray, height: float) -> np.ndarray:
    """bool (N,): components (rows of `stats`) that may be commas (`commas_among`, whatever
    their width) between components taller than a comma can be, kept out of the digits'
    grouping as `dots` are; `symbols` tells a comma from a hairline."""
    boxes = np.column_stack([stats[:, 1], stats[:, 2], stats[:, 1:3] + stats[:, 3:5]])
    digits = boxes[stats[:, 4] > COMMA_TALL[1] * height]
    return commas_among(boxes, digits, height)


def same_digit(a: np.ndarray, b: np.ndarray, height: float) -> bool:
    """Whether two components (label, x, y, w, h, area) are pieces of one digit."""
    overlap = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    gap = max(a[2], b[2]) - min(a[2] + a[4], b[2] + b[4])
    span = max(a[2] + a[4], b[2] + b[4]) - min(a[2], b[2])
    taller = max(a[4], b[4])
    # A piece well under its neighbour's height is no digit of its own next to it: digits
    # side by side, or in two lines, are about as tall as each other.
    short = min(a[4], b[4]) < SHORT_PIECE * taller
    close = gap <= MERGE_GAP * height or span <= ONE_DIGIT_SPAN * taller or short
    stacked = overlap >= MERGE_OVERLAP * min(a[3], b[3]) and close
    # A short piece touching or overlapping its neighbour side-on is part of it too: a 5's
    # lifted bar off to the right, the foot of a 1.
    beside = overlap >= -TOUCH_GAP * taller and gap <= MERGE_GAP * height
    return stacked or (short and beside)


def group_pieces(stats: np.ndarray, height: float) -> list[list[int]]:
    """Rows of `stats` grouped into digits, the pieces of each joined as same_digit says."""
    group = list(range(len(stats)))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i in range(len(stats)):
        for j in range(i + 1, len(stats)):
            if same_digit(stats[i], stats[j], height):
                group[root(j)] = root(i)
    members: dict[int, list[int]] = {}
    for i in range(len(stats)):
        members.setdefault(root(i), []).append(i)
    return list(members.values())


def bounding_box(stats: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), right and bottom exclusive, around components' stats rows."""
    left, top = stats[:, 1].min(), stats[:, 2].min()
    right, bottom = (stats[:, 1] + stats[:, 3]).max(), (stats[:, 2] + stats[:, 4]).max()
    return int(left), int(top), int(right), int(bottom)


def check_count(count: int, name: str) -> None:
    """Refuse more than MAX_CANDIDATES candidates in one line: a page, not a number."""
    if count > MAX_CANDIDATES:
        raise SeveralLinesError(
            f"{name}: more than {MAX_CANDIDATES} digit candidates: "
            "this reads one line of digits, not a page"
        )


def check_one_line(boxes: list[tuple[int, int, int, int]], name: str) -> None:
    """Refuse a picture whose digits are not side by side: several lines, a page, a table."""
    check_count(len(boxes), name)
    for i, first in enumerate(boxes):
        for second in boxes[i + 1 :]:
            if first[3] <= second[1] or second[3] <= first[1]:
                raise SeveralLinesError(
                    f"{name}: several lines of writing: this reads one line of digits"
                )


def whole_picture(image: Image.Image, name: str = "image") -> Candidate:
    """The whole picture read as one digit, as preprocess.to_mnist reads it (`--single`)."""
    scale = float(image.info.get(DECODE_SCALE, 1.0))
    box = (0, 0, round(image.width * scale), round(image.height * scale))
    return Candidate(to_mnist(image, name), box)


def cropped(own: np.ndarray, left: int, top: int) -> Part:
    """A Part of the pixels `own` bool (h, w) whose corner is at (left, top), cropped to them."""
    (rows,) = np.nonzero(own.any(axis=1))
    (cols,) = np.nonzero(own.any(axis=0))
    box = (left + cols[0], top + rows[0], left + cols[-1] + 1, top + rows[-1] + 1)
    return Part(own[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], tuple(map(int, box)))


def slant(own: np.ndarray) -> float:
    """The writing's slant: columns moved per row down (negative: leaning right), from the
    second moments of each half of bool (h, w) pixels; two digits at different heights would
    lean the whole's moments."""
    leans = []
    for half in (own[:, : own.shape[1] // 2], own[:, own.shape[1] // 2 :]):
        ys, xs = np.nonzero(half)
        if len(ys) < 2:
            continue
        dy, dx = ys - ys.mean(), xs - xs.mean()
        leans.append(float((dx * dy).sum()) / max(float((dy * dy).sum()), 1.0))
    return float(np.clip(np.mean(leans), -MAX_SLANT, MAX_SLANT)) if leans else 0.0


def cut_columns(profile: np.ndarray) -> list[int]:
    """Up to CUTS places to cut an ink projection profile int (W,): its lowest local minima
    in the middle, between CUT_FROM of the width from either side."""
    low, high = math.ceil(CUT_FROM * len(profile)), math.floor((1 - CUT_FROM) * len(profile))
    smooth = np.convolve(profile, np.ones(3), "same")
    minima = [
        x
        for x in range(max(low, 1), min(high, len(profile) - 1))
        if smooth[x] <= smooth[x - 1] and smooth[x] <= smooth[x + 1]
    ]
    return sorted(minima, key=lambda x: smooth[x])[:CUTS]


def drop_fall(own: np.ndarray, start: int) -> np.ndarray:
    """The column int (h,) where a drop of water let fall from the top of bool (h, w) ink at
    column `start` crosses each row: it falls straight through empty pixels, slides down a
    stroke's side where one below-side pixel is empty, and cuts through the stroke otherwise
    (the descending drop-fall, Congedo et al. 1995). Pixels left of the path are one digit."""
    height, width = own.shape
    path = np.empty(height, int)
    x = int(np.clip(start, 1, width - 1))
    for y in range(height):
        path[y] = x
        if y + 1 == height or not own[y + 1, x]:
            continue
        for step in (-1, 1):
            if 0 < x + step < width and not own[y + 1, x + step]:
                x += step
                break
    return path


def boundaries(part: Part) -> list[np.ndarray]:
    """Candidate cuts of a piece as the first column int (h,) of the right-hand digit in each
    row: straight down and along the writing's slant at the projection profile's minima, and
    drop-fall paths from those places at the top and, upside down, at the bottom."""
    # The ink's own shape, not the box's: cuts are found on a pooled copy in the piece's box.
    height, width = part.own.shape
    ys, xs = np.nonzero(part.own)
    rows = np.arange(height) - ys.mean()
    found = []
    for shear in {0.0, round(slant(part.own), 2)}:
        along = np.round(xs - shear * (ys - ys.mean())).astype(int)
        start = along.min()
        for column in cut_columns(np.bincount(along - start)):
            straight = np.ceil(start + column + shear * rows).astype(int)
            found.append(straight)
            found.append(drop_fall(part.own, straight[0]))
            found.append(drop_fall(part.own[::-1], straight[-1])[::-1])
    # Where two digits meet, the outline dips between them from above or below (the valley
    # points of Fujisawa et al. 1992): a drop let fall there finds the join.
    low, high = math.ceil(CUT_FROM * width), math.floor((1 - CUT_FROM) * width)
    if high > low:
        inked = part.own[:, low:high]
        depth = np.where(inked.any(axis=0), np.argmax(inked, axis=0), height)
        found.append(drop_fall(part.own, low + int(np.argmax(depth))))
        rise = np.where(inked.any(axis=0), np.argmax(inked[::-1], axis=0), height)
        found.append(drop_fall(part.own[::-1], low + int(np.argmax(rise)))[::-1])
    return found


def strokes_cut(own: np.ndarray, boundary: np.ndarray) -> int:
    """How many strokes of bool (h, w) ink a cut int (h,) (the first right-hand column per
    row) goes through: runs of rows where it passes through ink."""
    rows = np.arange(len(boundary))
    inside = (boundary > 0) & (boundary < own.shape[1])
    through = np.zeros(len(boundary), bool)
    through[inside] = own[rows[inside], boundary[inside]] & own[rows[inside], boundary[inside] - 1]
    return int(np.count_nonzero(through[1:] & ~through[:-1]) + through[0])


def holes(own: np.ndarray) -> np.ndarray:
    """bool (h, w): the background of bool (h, w) ink that the ink encloses (a loop's inside,
    4-connected, as the ink is 8-connected, not reached from outside its box), where that
    inside is at least LOOP_TALL of the ink's height: strokes that touch at a slant leave a
    pinhole of paper between them, not a loop."""
    outside = np.pad(~own, 1, constant_values=True).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(outside, connectivity=4)
    loops = np.flatnonzero(stats[:, cv2.CC_STAT_HEIGHT] >= LOOP_TALL * own.shape[0])
    loops = loops[(loops != labels[0, 0]) & (loops != 0)]
    return among(labels[1:-1, 1:-1], loops) & ~own


def opens_loop(enclosed: np.ndarray, boundary: np.ndarray) -> bool:
    """Whether a cut int (h,) (the first right-hand column per row) passes through the inside
    of a loop, bool (h, w) from `holes`: it then cuts one closed shape in two (a 0, the ring
    of a drawn face), where two touching digits meet at a neck with open paper around it."""
    rows = np.arange(len(boundary))
    inside = (boundary > 0) & (boundary < enclosed.shape[1])
    rows, columns = rows[inside], boundary[inside]
    return bool((enclosed[rows, columns] | enclosed[rows, columns - 1]).any())


@dataclass(frozen=True)
class Cut:
    """A piece cut in two: its sides, left then right, how many strokes the cut goes through
    (`strokes_cut`) and whether it passes through a loop's inside (`opens_loop`)."""

    left: Part
    right: Part
    strokes: int
    loop: bool


# A candidate cut of a piece, its sides' confidences float (2,) (0 where a side is not an
# accepted digit) and the digits they read as, int (2,).
CutOption = tuple[Cut, np.ndarray, np.ndarray]


def pooled(own: np.ndarray, step: int) -> np.ndarray:
    """bool (h, w) ink shrunk `step` times each way, a pixel inked where any of its block is
    (strokes stay joined, however thin)."""
    height, width = -(-own.shape[0] // step) * step, -(-own.shape[1] // step) * step
    padded = np.zeros((height, width), bool)
    padded[: own.shape[0], : own.shape[1]] = own
    return padded.reshape(height // step, step, width // step, step).any(axis=(1, 3))


def may_cut(part: Part, height: float) -> bool:
    """Whether a piece is wide enough to be two touching digits: UNREAD_WIDE (or WIDE, the
    smaller) of its height or the digit `height`, the larger."""
    return part.width >= min(WIDE, UNREAD_WIDE) * max(part.height, height)


def cuts(part: Part, height: float, whole: float) -> list[Cut]:
    """Two-piece cuts of a piece wide enough to be two touching digits (see boundaries;
    Congedo, Dimauro, Impedovo and Pirlo 1995, "Segmentation of numeric strings") that could
    win against the whole's confidence `whole` (0 where it is not an accepted digit) with
    the best readings of their sides (`cut_wins`), without near repeats. Empty where
    `may_cut` is not; each side holds SIDE_INK of the ink and is at most SIDE_WIDE times as
    wide as tall; two cuts whose sides differ by under SAME_CUT of the ink are one.

    The cuts are found on a copy at most about CUT_SIDE pixels on its longer side (a drop's
    fall is a loop over the rows) and drawn through the piece at its own size."""
    if not may_cut(part, height):
        return []
    step = max(1, round(max(part.own.shape) / CUT_SIDE))
    small = Part(pooled(part.own, step), part.box)
    total = small.own.sum()
    columns, rows = np.arange(small.own.shape[1]), np.arange(part.height) // step
    enclosed = holes(small.own)
    options, kept = [], []
    best = np.ones(2), np.full(2, -1)  # sides read as surely as can be, as no 1 at all
    for boundary in boundaries(small):
        left = small.own & (columns[None, :] < boundary[:, None])
        if min(left.sum(), total - left.sum()) < SIDE_INK * total or any(
            np.count_nonzero(left ^ other) < SAME_CUT * total for other in kept
        ):
            continue
        kept.append(left)
        at_size = part.own & (np.arange(part.width)[None, :] < step * boundary[rows][:, None])
        right = part.own & ~at_size
        if not at_size.any() or not right.any():
            continue
        sides = (cropped(at_size, *part.box[:2]), cropped(right, *part.box[:2]))
        if max(side.width / side.height for side in sides) > SIDE_WIDE:
            continue
        cut = Cut(*sides, strokes_cut(small.own, boundary), opens_loop(enclosed, boundary))
        # Scoring costs most of the time: only a cut that could win, read at best, is scored.
        if cut_wins(part, cut, height, whole, *best):
            options.append(cut)
    return options


def doubt(confidence: float) -> float:
    """log10 of one minus a confidence, floored at DOUBT_FLOOR: how far a reading is from sure."""
    return math.log10(max(1.0 - confidence, DOUBT_FLOOR))


def cut_wins(
    part: Part, cut: Cut, height: float, whole: float, sides: np.ndarray, digits: np.ndarray
) -> bool:
    """Whether `cut` of `part` reads clearly better than the whole: `whole` is the whole's
    confidence (0 where it is not an accepted digit), `sides` float (2,) the sides' (0 where
    not accepted) and `digits` int (2,) what they are read as. See UNREAD_WIDE, WIDE and
    WIDEST for the rules."""
    ratio = part.width / max(part.height, height)
    tall = min(cut.left.height, cut.right.height) / part.height
    sure = float(sides.min())
    if tall < SIDE_TALL or (digits == 1).all():  # a V, a W, a U comes apart into two 1s
        return False
    if sure == 0 or ((digits == 1).any() and ratio < ONE_WIDE):
        return False
    if whole == 0:  # what the model judged not a digit becomes a number only on strong evidence
        return (
            ratio >= UNREAD_WIDE
            and sure >= SIDES_SURE
            and cut.strokes <= NECK_STROKES
            and (ratio >= LOOP_WIDE or not cut.loop)
        )
    # How much surer the sides are than the whole, in powers of ten of their doubt.
    surer = doubt(whole) - doubt(float(sides.prod()))
    if ratio >= WIDEST and sure >= WIDEST_SURE and tall >= WIDEST_TALL and not cut.loop:
        return surer >= -WIDEST_DOUBTS
    return (
        ratio >= WIDE
        and sure >= SURE
        and tall >= SURE_TALL
        and cut.strokes <= SURE_STROKES
        and surer + DOUBT_PER_WIDTH * (ratio - WIDE) >= DOUBTS
    )


def joined(first: Part, second: Part) -> Part:
    """One Part of two pieces' pixels, in the box around both."""
    left, top = min(first.box[0], second.box[0]), min(first.box[1], second.box[1])
    right, bottom = max(first.box[2], second.box[2]), max(first.box[3], second.box[3])
    own = np.zeros((bottom - top, right - left), bool)
    for part in (first, second):
        x, y = part.box[0] - left, part.box[1] - top
        own[y : y + part.height, x : x + part.width] |= part.own
    return Part(own, (left, top, right, bottom))


def side_gap(first: Part, second: Part) -> int:
    """The columns between neighbouring pieces' boxes (left to right), negative where they
    overlap side-on."""
    return second.box[0] - first.box[2]


def may_join(first: Part, second: Part, height: float) -> bool:
    """Whether neighbouring pieces (left to right) may be one digit in two strokes: at most
    MERGE_NEAR digit heights apart side-on, beside each other, and together MERGED_WIDE."""
    gap = side_gap(first, second)
    beside = min(first.box[3], second.box[3]) - max(first.box[1], second.box[1])
    wide = max(first.box[2], second.box[2]) - min(first.box[0], second.box[0])
    return (
        gap <= MERGE_NEAR * height
        and beside >= 0.5 * min(first.height, second.height)
        and wide <= MERGED_WIDE * height
    )


def two_strokes(first: Part, second: Part, height: float) -> bool:
    """Whether neighbouring pieces (left to right) lie as one digit's two strokes: at most
    STROKES_GAP digit heights apart side-on, their bottoms at least STROKES_OFFSET apart."""
    offset = abs(first.box[3] - second.box[3])
    return side_gap(first, second) <= STROKES_GAP * height and offset >= STROKES_OFFSET * height


def best_cuts(
    parts: list[Part],
    height: float,
    whole: np.ndarray,
    splits: list[tuple[int, Cut]],
    sides: np.ndarray,
    digits: np.ndarray,
) -> dict[int, tuple[Cut, int]]:
    """The cut to keep for each piece that is cut: the index in `parts` -> its Cut, the
    winning one (`cut_wins`) whose sides read most confidently, and the two digits its sides
    read as, as a pair class (10 * left + right).

    `whole` float (len(parts),) is each piece's confidence, 0 where it is not an accepted
    digit; `splits` the options (piece index, Cut); `sides` float (len(splits), 2) their
    sides' confidences, 0 where not accepted, and `digits` int (len(splits), 2) what they are
    read as.
    """
    best: dict[int, tuple[float, Cut, int]] = {}
    for (n, cut), pair, read in zip(splits, sides, digits, strict=True):
        worth = float(pair.prod())
        if worth > best.get(n, (0.0,))[0] and cut_wins(parts[n], cut, height, whole[n], pair, read):
            best[n] = (worth, cut, int(10 * read[0] + read[1]))
    return {n: (cut, number) for n, (_, cut, number) in best.items()}


def scored(digits: list[np.ndarray], score: Score) -> tuple[np.ndarray, np.ndarray]:
    """`score`'s reading of uint8 (28, 28) digits: what each is worth, float (N,) (its
    confidence, 0 where it is not an accepted digit), and the digit it reads as, int (N,).
    No call for no digits."""
    if not digits:
        return np.zeros(0), np.zeros(0, int)
    probabilities, accepted = score(np.stack(digits))
    return np.where(accepted, probabilities.max(axis=1), 0.0), probabilities.argmax(axis=1)


def readings(pieces: list[Part], ink: np.ndarray, score: Score) -> tuple[np.ndarray, np.ndarray]:
    """`scored` for pieces on the work-size ink float (H, W), each read at most SCORED_SIDE on
    its longer side."""
    return scored([piece.digit(ink, SCORED_SIDE) for piece in pieces], score)


def may_be_pair(part: Part, height: float) -> bool:
    """Whether a piece too narrow to cut may still be two touching digits for the pair model:
    PAIR_NARROW of its height or the digit `height`, the larger."""
    return part.width >= PAIR_NARROW * max(part.height, height) and not may_cut(part, height)


def reads_as_pair(probabilities: np.ndarray, whole: float, narrow: bool = False) -> bool:
    """Whether the pair model's probabilities float (C,) for a piece read it as two touching
    digits: one pair at least PAIR_SURE, or PAIR_SURE_READ where the digit model reads the
    whole as a digit WHOLE_SURE confident (`whole`, 0 where not accepted); for a `narrow`
    piece (`may_be_pair`), NARROW_SURE, NARROW_SURE_UNREAD where not accepted, or
    NARROW_SURE_READ where read NARROW_WHOLE sure. A wide piece the digit model does not accept
    takes PAIR_SURE_UNREAD, and only where the pair model gives "no digit" at most
    UNREAD_NO_DIGIT."""
    best = int(np.argmax(probabilities))
    if narrow and whole == 0:
        sure = NARROW_SURE_UNREAD
    elif whole == 0:
        if float(probabilities[NO_DIGIT]) > UNREAD_NO_DIGIT:
            return False
        sure = PAIR_SURE_UNREAD
    elif narrow:
        sure = NARROW_SURE if whole < NARROW_WHOLE else NARROW_SURE_READ
    else:
        sure = PAIR_SURE_READ if whole >= WHOLE_SURE else PAIR_SURE
    return best < PAIR_CLASSES and float(probabilities[best]) >= sure


def may_be_strokes(pair: int, whole: float, digit: int) -> bool:
    """Whether a pair class may be strokes rather than two digits: 11, or a 1 before the very
    `digit` the digit model reads the whole as, `whole` at least NARROW_WHOLE confident."""
    return pair == TWO_ONES or (divmod(pair, 10) == (1, digit) and whole >= NARROW_WHOLE)


def stand_apart(part: Part, sides: list[Part], tall: float = SURE_TALL) -> bool:
    """Whether a piece's two sides (pair_split's) are each at least `tall` of its height
    and the split between them passes through no loop's inside (`opens_loop`)."""
    if min(side.height for side in sides) < tall * part.height:
        return False
    left = np.zeros_like(part.own)
    x, y = sides[0].box[0] - part.box[0], sides[0].box[1] - part.box[1]
    left[y : y + sides[0].height, x : x + sides[0].width] = sides[0].own
    # The first column right of the left side's ink in each row (0 where the row has none):
    # pair_split's own line lies further right only across paper, so it opens the same loops.
    boundary = np.where(left.any(axis=1), part.width - np.argmax(left[:, ::-1], axis=1), 0)
    return not opens_loop(holes(part.own), boundary)


def pair_of(
    part: Part, probabilities: np.ndarray, whole: float, narrow: bool = False, digit: int = -1
) -> list[Part] | None:
    """A piece's two sides (`pair_split`) where the pair model's probabilities float (C,) read
    it as two touching digits (`reads_as_pair`; `whole` and `narrow` as there) and, for a
    reading that may be strokes (`may_be_strokes`, `digit` the digit model's reading of the
    whole), where the digit model accepts the whole (`whole` > 0) and the sides stand apart
    (`stand_apart`, each ONES_TALL of its height for 11, SURE_TALL else); else None."""
    if not reads_as_pair(probabilities, whole, narrow):
        return None
    sides = pair_split(part, probabilities)
    best = int(np.argmax(probabilities))
    if may_be_strokes(best, whole, digit):
        tall = ONES_TALL if best == TWO_ONES else SURE_TALL
        return sides if whole > 0 and stand_apart(part, sides, tall) else None
    return sides


def overrules_cut(probabilities: np.ndarray, cut: int) -> bool:
    """Whether the pair model's probabilities float (C,) for a piece a cut won read it as
    another pair than the cut's sides (`cut`, a pair class) at least PAIR_OVER_CUT sure."""
    best = int(np.argmax(probabilities))
    sure = float(probabilities[best]) >= PAIR_OVER_CUT
    return best < PAIR_CLASSES and best not in (TWO_ONES, cut) and sure


def agreed_cut(
    probabilities: np.ndarray, whole: float, digit: int, options: list[CutOption]
) -> Cut | None:
    """For a wide piece the digit model accepts (`whole` > 0, read as `digit`) that no cut won
    and the pair model did not take, the cut whose two sides read as the very pair the pair
    model reads the whole as, its probabilities float (C,) at least AGREED_SURE, with both
    sides accepted digits and the cut through no loop's inside: the surest such, or None.
    Never a reading that may be strokes (`may_be_strokes`: 11, a 1 before `digit`).
    `options` holds the piece's candidate cuts (CutOption)."""
    best = int(np.argmax(probabilities))
    if whole == 0 or best >= PAIR_CLASSES or may_be_strokes(best, whole, digit):
        return None
    if float(probabilities[best]) < AGREED_SURE:
        return None
    agreed = [
        (float(confidences.prod()), cut)
        for cut, confidences, digits in options
        if confidences.min() > 0 and not cut.loop and 10 * int(digits[0]) + int(digits[1]) == best
    ]
    return max(agreed, key=lambda option: option[0])[1] if agreed else None


def pair_split(part: Part, probabilities: np.ndarray) -> list[Part]:
    """A piece read whole as two touching digits: its left and right sides, each with its
    digit's probabilities float (10,) from the pair model's float (C,) (the pairs' marginals).
    The sides are only drawn, not read again: they are cut (`boundaries`) where the fewest
    strokes are crossed, nearest the middle, else straight down the middle."""
    pairs = probabilities[:PAIR_CLASSES].reshape(10, 10)
    pairs = pairs / max(float(pairs.sum()), DOUBT_FLOOR)
    step = max(1, round(max(part.own.shape) / CUT_SIDE))
    small = Part(pooled(part.own, step), part.box)
    rows, columns = np.arange(part.height) // step, np.arange(part.width)
    options = []
    for boundary in boundaries(small):
        left = part.own & (columns[None, :] < step * boundary[rows][:, None])
        if left.any() and (part.own & ~left).any():
            middle = abs(float(boundary.mean()) - small.own.shape[1] / 2)
            options.append((strokes_cut(small.own, boundary), middle, left))
    if options:
        left = min(options, key=lambda option: option[:2])[2]
    else:
        left = part.own & (columns[None, :] < part.width // 2)
    sides = cropped(left, *part.box[:2]), cropped(part.own & ~left, *part.box[:2])
    return [
        replace(sides[0], reading=pairs.sum(axis=1).astype(np.float32)),
        replace(sides[1], reading=pairs.sum(axis=0).astype(np.float32)),
    ]


def resegment(
    parts: list[Part],
    ink: np.ndarray,
    height: float,
    score: Score,
    pair: PairScore | None = None,
) -> list[Part]:
    """Recognition-based segmentation (Fujisawa et al. 1992): join neighbouring pieces that
    read as one digit clearly better (`may_join`, MERGE_MARGIN), and cut wide pieces that
    read as two digits clearly better (`cuts`, `best_cuts`): the pieces and joins scored by
    `score` in one batched call, then the cuts that could still win in another. With `pair`,
    the wide pieces are read by it in a third call: those left whole that it reads as two
    touching digits (`pair_of`), and those cut that it reads as another pair
    (`overrules_cut`), become its two (`pair_split`); those left whole that one of their
    candidate cuts reads as the pair it finds likeliest are cut there (`agreed_cut`).
    `parts` are left to right;
    so is the result, in which a piece left as it was is the very Part it was (the narrower
    pieces are asked later, many pictures' at once: `split_narrow_pairs`)."""
    joins = [
        (n, joined(parts[n], parts[n + 1]))
        for n in range(len(parts) - 1)
        if may_join(parts[n], parts[n + 1], height)
    ]
    wide = [n for n, part in enumerate(parts) if may_cut(part, height)]
    if not joins and not wide:
        return parts
    sure, said_as = readings(parts + [whole for _, whole in joins], ink, score)
    whole, joins_sure = sure[: len(parts)], sure[len(parts) :]
    # The cuts that could win against the whole's actual reading are read in a second call:
    # a single digit read as surely as float32 tells, under WIDEST wide, costs no options.
    splits = [(n, cut) for n in wide for cut in cuts(parts[n], height, float(whole[n]))]
    sides, read = readings(
        [side for _, cut in splits for side in (cut.left, cut.right)], ink, score
    )
    sides, read = sides.reshape(-1, 2), read.reshape(-1, 2)
    options: dict[int, list[CutOption]] = {n: [] for n in wide}
    for (n, cut), confidences, digits in zip(splits, sides, read, strict=True):
        options[n].append((cut, confidences, digits))
    result: dict[int, list[Part]] = {n: [part] for n, part in enumerate(parts)}
    changed: set[int] = set()
    gains = [
        (joins_sure[k] - whole[n] * whole[n + 1], joins_sure[k], n, part)
        for k, (n, part) in enumerate(joins)
    ]
    for gain, sure, n, part in sorted(gains, key=lambda g: -g[0]):
        # Two pieces neither of which is a digit make one only when it reads SIDES_SURE.
        unread = whole[n] == 0 and whole[n + 1] == 0 and gain < SIDES_SURE
        strokes = sure >= STROKES_SURE and two_strokes(parts[n], parts[n + 1], height)
        if (gain > MERGE_MARGIN or strokes) and not unread and not {n, n + 1} & changed:
            result[n], result[n + 1] = [part], []
            changed |= {n, n + 1}
    cut_as: dict[int, int] = {}
    for n, (cut, number) in best_cuts(parts, height, whole, splits, sides, read).items():
        if n not in changed:
            result[n] = [cut.left, cut.right]
            changed.add(n)
            cut_as[n] = number
    asked = [n for n in wide if n not in changed or n in cut_as]
    if pair is not None and asked:
        said = pair(np.stack([parts[n].pair_input(ink) for n in asked]))
        for n, probabilities in zip(asked, said, strict=True):
            if n in cut_as:
                if overrules_cut(probabilities, cut_as[n]):
                    result[n] = pair_split(parts[n], probabilities)
            elif pair_sides := pair_of(parts[n], probabilities, whole[n], digit=said_as[n]):
                result[n] = pair_sides
            elif agreed := agreed_cut(probabilities, whole[n], said_as[n], options[n]):
                result[n] = [agreed.left, agreed.right]
    return [part for n in range(len(parts)) for part in result[n]]


@dataclass(frozen=True)
class Pieces:
    """What find_parts finds in one picture, at the work size: the digit candidates left to
    right; the indices among them of the narrow pieces the pair model may still read
    (`may_be_pair`, left as they were found), and of those resegmentation made (a cut's side,
    joined strokes); the boxes of the marks too small to be digits (specks, points, bars); the
    ink float (H, W); the digit height, the original pixels per work pixel, and the paper
    margin added round the picture (ink_map)."""

    parts: list[Part]
    narrow: list[int]
    made: list[int]
    little: list[tuple[int, int, int, int]]
    ink: np.ndarray
    height: float
    scale: float
    margin: int = 0

    def original(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A work-size box (left, top, right, bottom) in the original picture's pixels, the
        paper margin taken off (clipped to the picture)."""
        height, width = (side - 2 * self.margin for side in self.ink.shape)
        left, top, right, bottom = (side - self.margin for side in box)
        inside = (min(max(left, 0), width), min(max(top, 0), height))
        inside += (min(max(right, 0), width), min(max(bottom, 0), height))
        return tuple(round(side * self.scale) for side in inside)


def find_parts(
    image: Image.Image, name: str, score: Score | None, pair: PairScore | None = None
) -> Pieces:
    """The Pieces of a picture, resegmented with `score` and `pair` (see find_number) but for
    its narrow pieces (`split_narrow_pairs`)."""
    ink, scale, margin = ink_map(image, name)
    mask = erase_lines(ink)
    labels, stats = components(mask)
    stats = stats[~frames(stats) & ~edge_light(labels, stats, ink, score)]
    if len(stats) == 0:
        raise NoDigitFoundError(f"{name}: no digit found")
    height = digit_height(stats)
    big = np.maximum(stats[:, 3], stats[:, 4]) >= SPECK * height
    big &= ~dots(stats, height) & ~commas(stats, height)
    specks, stats = stats[~big], stats[big]
    # Grouping compares every pair: a page of text is refused before that, not after.
    check_count(len(stats) // PIECES_PER_DIGIT, name)
    groups = sorted(
        (stats[rows] for rows in group_pieces(stats, height)), key=lambda g: g[:, 1].min()
    )
    boxes = [bounding_box(g) for g in groups]
    tall = [box[3] - box[1] >= MIN_DIGIT_HEIGHT * height for box in boxes]
    little = [bounding_box(speck[np.newaxis]) for speck in specks]
    little += [box for box, keep in zip(boxes, tall, strict=True) if not keep]
    groups = [g for g, keep in zip(groups, tall, strict=True) if keep]
    boxes = [box for box, keep in zip(boxes, tall, strict=True) if keep]
    check_one_line(boxes, name)
    parts = [
        Part(among(labels[top:bottom, left:right], group[:, 0]), (left, top, right, bottom))
        for group, (left, top, right, bottom) in zip(groups, boxes, strict=True)
    ]
    found = parts
    if score is not None and parts:
        parts = resegment(parts, ink, height, score, pair)
        check_count(len(parts), name)
    # resegment returns a piece it left alone as the very Part it was given.
    made = [n for n, part in enumerate(parts) if not any(part is first for first in found)]
    narrow = [n for n, part in enumerate(parts) if may_be_pair(part, height) and n not in made]
    return Pieces(parts, narrow, made, little, ink, height, scale, margin)


def split_narrow_pairs(
    pictures: list[Pieces], digits: list[list[np.ndarray]], score: Score, pair: PairScore
) -> list[list[list[Part]]]:
    """Many pictures' narrow pieces (Pieces.narrow) read by `pair` where `score` reads their
    digit (`digits`: each picture's parts' uint8 (28, 28), Part.digit) as one digit under
    NARROW_ASKED or not as a digit, and those it reads as two touching digits (`pair_of`,
    narrow) made two: all the pictures' pieces in one call of `score` and, for
    those it is unsure of, one of `pair`. Returns, for each picture, each part alone or its
    two sides."""
    result = [[[part] for part in pieces.parts] for pieces in pictures]
    narrow = [(k, n) for k, pieces in enumerate(pictures) for n in pieces.narrow]
    whole, said_as = scored([digits[k][n] for k, n in narrow], score)
    read = zip(narrow, whole, said_as, strict=True)
    unsure = [(k, n, float(sure), int(as_)) for (k, n), sure, as_ in read if sure < NARROW_ASKED]
    if unsure:
        inputs = [pictures[k].parts[n].pair_input(pictures[k].ink) for k, n, _, _ in unsure]
        for (k, n, sure, as_), probabilities in zip(unsure, pair(np.stack(inputs)), strict=True):
            if pair_sides := pair_of(pictures[k].parts[n], probabilities, sure, True, as_):
                result[k][n] = pair_sides
    return result


def number_of(
    pieces: Pieces, groups: list[list[Part]], digits: list[np.ndarray], name: str
) -> Found:
    """The Found of a picture's Pieces, given for each of its parts (whose uint8 (28, 28) are
    `digits`) the part alone or its two sides (`split_narrow_pairs`); the candidates are
    checked again by check_count."""
    parts = [part for group in groups for part in group]
    check_count(len(parts), name)
    original = pieces.original
    marks, notes = symbols(pieces.little, parts, pieces.height, pieces.ink)
    return Found(
        [
            Candidate(
                digit if len(group) == 1 else part.digit(pieces.ink),
                original(part.box),
                part.reading,
            )
            for group, digit in zip(groups, digits, strict=True)
            for part in group
        ],
        [Symbol(text, original(box)) for text, box in marks],
        notes,
    )


def pen_width(parts: list[Part]) -> float:
    """The digits' mean pen width in work pixels (preprocess.stroke_width of their pixels)."""
    widths = [stroke_width(part.own.astype(np.float32)) for part in parts]
    weights = [part.own.sum() for part in parts]
    return float(np.average(widths, weights=weights))


def digit_after(box: tuple[int, int, int, int], parts: list[Part]) -> int | None:
    """The index of the first of `parts` (left to right) to start right of a mark's middle,
    or None when none does."""
    middle = (box[0] + box[2]) / 2
    return next((n for n, part in enumerate(parts) if part.box[0] > middle), None)


def point_between(box: tuple[int, int, int, int], parts: list[Part], height: float) -> int | None:
    """The index of the digit after a mark's box when it lies between two digits with its
    bottom on theirs (within BASELINE), or just before the first (LEADING_GAP) with its bottom
    on that digit's (0), else None."""
    middle = (box[0] + box[2]) / 2
    after = digit_after(box, parts)
    if after is None:
        return None
    later, slack = parts[after].box, BASELINE * height
    if after == 0:
        beside, baseline = later[0] - box[2] <= LEADING_GAP * height, later[3]
    else:
        before = parts[after - 1].box
        beside = before[2] - slack <= middle <= later[0] + slack
        baseline = (before[3] + later[3]) / 2
    return after if beside and abs(box[3] - baseline) <= slack else None


def under_a_mark(
    box: tuple[int, int, int, int], little: list[tuple[int, int, int, int]], height: float
) -> bool:
    """Whether another of the `little` marks stands over a mark's box as a colon's upper dot
    does (COLON_SIZE, COLON_REACH): then the two are a colon ("12:30") or crumbs of a
    stroke, not a decimal point, which stands alone. Boxes are (left, top, right, bottom)."""
    size = max(box[2] - box[0], box[3] - box[1])
    for other in little:
        width, thick = other[2] - other[0], other[3] - other[1]
        longer = max(width, thick)
        if (
            other[0] < box[2]
            and box[0] < other[2]
            and longer <= ROUND * min(width, thick)
            and COLON_SIZE[0] * size <= longer <= COLON_SIZE[1] * size
            and size / 2 <= box[1] - other[3]
            and box[3] - other[1] <= COLON_REACH * height
        ):
            return True
    return False


def place(after: int, count: int | None = None) -> str:
    """Where a mark before digit `after` (0 the first) of `count` digits lies, in words for a
    note (`after` == `count`: after the last)."""
    if after == 0:
        return "before the first digit"
    return "after the last digit" if after == count else f"between digits {after} and {after + 1}"


def is_minus(
    box: tuple[int, int, int, int], first: Part, height: float, pen: float, long: float = MINUS_LONG
) -> bool:
    """Whether a mark's box is a minus before the first digit (see MINUS_LONG; `long` is how
    many times as long as thick it must be)."""
    width, thick = box[2] - box[0], box[3] - box[1]
    middle, first_middle = (box[1] + box[3]) / 2, (first.box[1] + first.box[3]) / 2
    return (
        width >= long * thick
        and MINUS_SPAN[0] * height <= width <= MINUS_SPAN[1] * height
        and thick <= MINUS_THICK * pen
        and abs(middle - first_middle) <= MINUS_MIDDLE * height
        and 0 <= first.box[0] - box[2] <= MINUS_GAP * height
    )


def symbols(
    little: list[tuple[int, int, int, int]], parts: list[Part], height: float, ink: np.ndarray
) -> tuple[list[tuple[str, tuple[int, int, int, int]]], list[str]]:
    """The decimal point, commas and leading minus among the marks too small to be digits, as
    (text, box at the work size), and notes on marks where a point or a minus may be dirt.
    Boxes are (left, top, right, bottom) in work pixels of `ink` float (H, W) in [0, 1]."""
    if not parts or not little:
        return [], []
    pen, boxes = pen_width(parts), [part.box for part in parts]
    digits_ink = np.concatenate([part.own_ink(ink)[part.own] for part in parts])
    strong = float(np.percentile(digits_ink, PEN_PERCENTILE))
    comma = commas_among(np.array(little), np.array(boxes), height, pen)
    comma_shaped = commas_among(np.array(little), np.array(boxes), height)
    found, notes, points, separators = [], [], [], []
    for n, box in enumerate(little):
        if comma[n]:
            separators.append((",", box))
            continue
        if is_minus(box, parts[0], height, pen):
            found.append(("-", box))
            continue
        if is_minus(box, parts[0], height, pen, MINUS_SHORT):
            notes.append("a short mark before the first digit may be a minus sign: read without it")
            continue
        after = point_between(box, parts, height)
        width, thick = box[2] - box[0], box[3] - box[1]
        longer = max(width, thick)
        if after is None or longer > ROUND * min(width, thick):
            if comma_shaped[n]:  # kept out of the digits for its shape alone
                at = place(digit_after(box, parts))
                notes.append(f"a mark {at} may be a comma or a speck: read without it")
            continue
        sized = POINT_SIZE[0] * pen <= longer <= POINT_SIZE[1] * pen
        dark = float(ink[box[1] : box[3], box[0] : box[2]].max()) >= POINT_INK * strong
        if sized and dark and after > 0:
            if under_a_mark(box, little, height):
                notes.append(
                    f"two marks {place(after)}, one above the other, may be a colon: "
                    "read without them"
                )
            else:
                points.append((width * thick, after, box))
            continue
        crumb = after == 0 and longer < LEADING_NOTE * pen
        if sized or (longer < POINT_SIZE[0] * pen and not crumb):
            notes.append(
                f"a mark {place(after)} may be a decimal point or a speck: read without it"
            )
    minus = [box for text, box in found]
    found = [("-", max(minus, key=lambda b: b[0]))] if minus else []
    found += separators
    if points:
        _, after, box = max(points)
        found.append((".", box))
        notes += [
            f"another mark {place(other)} may be a second point: read without it"
            for _, other, other_box in points
            if other_box != box
        ]
    return found, notes


def find_number(
    image: Image.Image,
    name: str = "image",
    score: Score | None = None,
    pair: PairScore | None = None,
) -> Found:
    """The digit candidates in `image` left to right, with its decimal point, commas and
    leading minus (symbols) and notes on marks that may be a point or dirt.

    With `score` (see Score: the caller's classifier), wide pieces are cut into touching
    digits and pieces of one digit joined where that reads clearly better (`resegment`); with
    `pair` too (see PairScore), a wide piece no cut won may be read whole as two touching
    digits, whose candidates then carry the pair model's reading.
    Raises NoDigitFoundError, or SeveralLinesError for several lines or more than MAX_CANDIDATES
    candidates.
    """
    (found,) = find_numbers([image], [name], score, pair)
    if isinstance(found, UserError):
        raise found
    return found


def candidate_digits(pieces: Pieces) -> list[np.ndarray]:
    """Each part's uint8 (28, 28) as it is read: those resegmentation made (Pieces.made) as
    they were scored, on a copy at most SCORED_SIDE on its longer side; the others at full
    size, as preprocess.to_mnist makes a single digit."""
    return [
        part.digit(pieces.ink, SCORED_SIDE if n in pieces.made else None)
        for n, part in enumerate(pieces.parts)
    ]


def find_numbers(
    images: list[Image.Image | UserError],
    names: list[str],
    score: Score | None = None,
    pair: PairScore | None = None,
) -> list[Found | UserError]:
    """find_number for each of many pictures, its error in its place (an error given in place
    of a picture is passed on), the narrow pieces of all of them read together
    (`split_narrow_pairs`: one call of `score` and one of `pair` for all, not one a picture).
    Every picture's work-size ink is held until all are segmented: a few dozen at a time."""
    found: list[Pieces | UserError] = []
    for image, name in zip(images, names, strict=True):
        try:
            found.append(
                image if isinstance(image, UserError) else find_parts(image, name, score, pair)
            )
        except UserError as error:
            found.append(error)
    pictures = [pieces for pieces in found if isinstance(pieces, Pieces)]
    digits = [candidate_digits(pieces) for pieces in pictures]
    if score is not None and pair is not None:
        groups = iter(split_narrow_pairs(pictures, digits, score, pair))
    else:
        groups = iter([[[part] for part in pieces.parts] for pieces in pictures])
    made = iter(digits)
    numbers: list[Found | UserError] = []
    for pieces, name in zip(found, names, strict=True):
        if isinstance(pieces, UserError):
            numbers.append(pieces)
            continue
        try:
            numbers.append(number_of(pieces, next(groups), next(made), name))
        except UserError as error:  # more candidates than one line holds, once split
            numbers.append(error)
    return numbers


def find_digits(
    image: Image.Image,
    name: str = "image",
    score: Score | None = None,
    pair: PairScore | None = None,
) -> list[Candidate]:
    """The digit candidates in `image`, left to right (find_number's digits)."""
    return find_number(image, name, score, pair).digits
