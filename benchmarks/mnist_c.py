# Copyright 2018 Google LLC
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     https://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
#
# Modified for mnist-cnn: a port of corruptions.py from google-research/mnist-c (commit bba57e4,
# June 2019; Mu and Gilmer 2019, "MNIST-C: A Robustness Benchmark for Computer Vision",
# arXiv:1906.02337) to NumPy 2, scikit-image 0.26 and Wand 0.7. Only the 15 corruptions of the
# benchmark (CORRUPTIONS), the helpers and imports they use are kept; the other corruptions of
# the original (ALL_CORRUPTIONS), the pessimal-noise matrix and the frost images are left out.
# Every other change is marked with a "PORT:" comment; the severities are the original defaults
# and every random draw is the original's, from NumPy's global (legacy) random state.
"""The 15 MNIST-C corruptions, ported from the published code (see the notice above).

Each function takes one MNIST digit as a PIL image of mode "L" (what the original got from
torchvision's MNIST) and returns a float array (28, 28) on [0, 255]. Like the original they draw
from NumPy's global random state, which `corrupt` seeds once per corruption.
"""

from __future__ import annotations

import ctypes
import warnings
from io import BytesIO

import cv2
import numpy as np
import skimage as sk
from PIL import Image
from skimage import feature, transform
from skimage.filters import gaussian
from wand.api import library as wandlibrary
from wand.image import Image as WandImage

warnings.simplefilter("ignore", UserWarning)

# The 15 corruptions of the benchmark, in the original's order ('identity' left out: the
# benchmark's clean row is the uncorrupted images themselves).
CORRUPTIONS = (
    "shot_noise",
    "impulse_noise",
    "glass_blur",
    "motion_blur",
    "shear",
    "scale",
    "rotate",
    "brightness",
    "translate",
    "stripe",
    "fog",
    "spatter",
    "dotted_line",
    "zigzag",
    "canny_edges",
)

# /////////////// Corruption Helpers ///////////////

# Tell Python about the C method
wandlibrary.MagickMotionBlurImage.argtypes = (
    ctypes.c_void_p,  # wand
    ctypes.c_double,  # radius
    ctypes.c_double,  # sigma
    ctypes.c_double,  # angle
)


# Extend wand.image.Image class to include method signature
class MotionImage(WandImage):
    def motion_blur(self, radius=0.0, sigma=0.0, angle=0.0):
        wandlibrary.MagickMotionBlurImage(self.wand, radius, sigma, angle)


# modification of https://github.com/FLHerne/mapgen/blob/master/diamondsquare.py
def plasma_fractal(mapsize=256, wibbledecay=3):
    """
    Generate a heightmap using diamond-square algorithm.
    Return square 2d array, side length 'mapsize', of floats in range 0-255.
    'mapsize' must be a power of two.
    """
    assert mapsize & (mapsize - 1) == 0
    # PORT: np.float_ was removed in NumPy 2.0; np.float64 is the same type.
    maparray = np.empty((mapsize, mapsize), dtype=np.float64)
    maparray[0, 0] = 0
    stepsize = mapsize
    wibble = 100

    def wibbledmean(array):
        return array / 4 + wibble * np.random.uniform(-wibble, wibble, array.shape)

    def fillsquares():
        """For each square of points stepsize apart,
        calculate middle value as mean of points + wibble"""
        cornerref = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        squareaccum = cornerref + np.roll(cornerref, shift=-1, axis=0)
        squareaccum += np.roll(squareaccum, shift=-1, axis=1)
        maparray[stepsize // 2 : mapsize : stepsize, stepsize // 2 : mapsize : stepsize] = (
            wibbledmean(squareaccum)
        )

    def filldiamonds():
        """For each diamond of points stepsize apart,
        calculate middle value as mean of points + wibble"""
        mapsize = maparray.shape[0]
        drgrid = maparray[stepsize // 2 : mapsize : stepsize, stepsize // 2 : mapsize : stepsize]
        ulgrid = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        ldrsum = drgrid + np.roll(drgrid, 1, axis=0)
        lulsum = ulgrid + np.roll(ulgrid, -1, axis=1)
        ltsum = ldrsum + lulsum
        maparray[0:mapsize:stepsize, stepsize // 2 : mapsize : stepsize] = wibbledmean(ltsum)
        tdrsum = drgrid + np.roll(drgrid, 1, axis=1)
        tulsum = ulgrid + np.roll(ulgrid, -1, axis=0)
        ttsum = tdrsum + tulsum
        maparray[stepsize // 2 : mapsize : stepsize, 0:mapsize:stepsize] = wibbledmean(ttsum)

    while stepsize >= 2:
        fillsquares()
        filldiamonds()
        stepsize //= 2
        wibble /= wibbledecay

    maparray -= maparray.min()
    return maparray / maparray.max()


def line_from_points(c0, r0, c1, r1):
    if c1 == c0:
        return np.zeros((28, 28))

    # Decay function defined as log(1 - d/2) + 1
    cc, rr = np.meshgrid(np.linspace(0, 27, 28), np.linspace(0, 27, 28), sparse=True)

    m = (r1 - r0) / (c1 - c0)
    f = lambda c: m * (c - c0) + r0  # noqa: E731 (the original's code)
    dist = np.clip(np.abs(rr - f(cc)), 0, 2.3 - 1e-10)
    corruption = np.log(1 - dist / 2.3) + 1
    corruption = np.clip(corruption, 0, 1)

    # PORT: np.int was removed in NumPy 1.24; the builtin int is what it aliased.
    l = int(np.floor(c0))  # noqa: E741 (the original's name)
    r = int(np.ceil(c1))

    corruption[:, :l] = 0
    corruption[:, r:] = 0

    return np.clip(corruption, 0, 1)


def old_affine_matrix(scale=(1.0, 1.0), rotation=0.0, shear=0.0, translation=(0.0, 0.0)):
    """PORT: the 3x3 matrix that AffineTransform(scale, rotation, shear, translation) built in
    skimage 0.15 to 0.20 (its formula, copied from 0.15, which the original ran on). skimage
    0.21 redefined `shear` (now an x-shear by tan(shear), or a (shear_x, shear_y) pair), so the
    ported shear/rotate/scale/translate pass this matrix instead of the keyword arguments."""
    sx, sy = np.broadcast_to(scale, 2)
    params = np.array(
        [
            [sx * np.cos(rotation), -sy * np.sin(rotation + shear), 0],
            [sx * np.sin(rotation), sy * np.cos(rotation + shear), 0],
            [0, 0, 1],
        ]
    )
    params[0:2, 2] = translation
    return params


def random_noise_sp(image, amount, salt_vs_pepper=0.5):
    """PORT: skimage.util.random_noise(image, mode='s&p', amount=...) as skimage 0.15 wrote it.
    Since 0.19 random_noise draws from its own np.random.default_rng (and samples differently)
    instead of the global state, which would break the original's seeding; this is the 0.15
    code for an unsigned image (low_clip = 0), verbatim otherwise."""
    image = sk.img_as_float(image)
    out = image.copy()
    p = amount
    q = salt_vs_pepper
    flipped = np.random.choice([True, False], size=image.shape, p=[p, 1 - p])
    salted = np.random.choice([True, False], size=image.shape, p=[q, 1 - q])
    peppered = ~salted
    out[flipped & salted] = 1
    out[flipped & peppered] = 0
    return np.clip(out, 0, 1.0)


# /////////////// End Corruption Helpers ///////////////


# /////////////// Corruptions ///////////////


def shot_noise(x, severity=5):
    c = [60, 25, 12, 5, 3][severity - 1]

    x = np.array(x) / 255.0
    x = np.clip(np.random.poisson(x * c) / float(c), 0, 1) * 255
    return x.astype(np.float32)


def impulse_noise(x, severity=4):
    c = [0.03, 0.06, 0.09, 0.17, 0.27][severity - 1]

    # PORT: random_noise_sp, skimage 0.15's s&p noise (see there), for sk.util.random_noise.
    x = random_noise_sp(np.array(x) / 255.0, amount=c)
    x = np.clip(x, 0, 1) * 255
    return x.astype(np.float32)


def glass_blur(x, severity=1):
    # sigma, max_delta, iterations
    c = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)][severity - 1]

    # PORT: `multichannel=True` was removed in skimage 0.19; `channel_axis=-1` is its
    # replacement and keeps its effect on a 2-D image: the last axis (columns) counts as
    # channels, so the blur runs down the rows only, sigma (c[0], 0), as it did in 2019.
    x = np.uint8(gaussian(np.array(x) / 255.0, sigma=c[0], channel_axis=-1) * 255)

    # locally shuffle pixels
    for i in range(c[2]):  # noqa: B007 (the original's loop)
        for h in range(28 - c[1], c[1], -1):
            for w in range(28 - c[1], c[1], -1):
                if np.random.choice([True, False], 1)[0]:
                    dx, dy = np.random.randint(-c[1], c[1], size=(2,))
                    h_prime, w_prime = h + dy, w + dx
                    # swap
                    x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]

    x = np.clip(gaussian(x / 255.0, sigma=c[0], channel_axis=-1), 0, 1) * 255
    return x.astype(np.float32)


def motion_blur(x, severity=1):
    c = [(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)][severity - 1]

    output = BytesIO()
    x.save(output, format="PNG")
    x = MotionImage(blob=output.getvalue())

    x.motion_blur(radius=c[0], sigma=c[1], angle=np.random.uniform(-45, 45))

    x = cv2.imdecode(np.frombuffer(x.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)

    return np.clip(np.array(x), 0, 255).astype(np.float32)


def fog(x, severity=5):
    c = [(1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)][severity - 1]

    x = np.array(x) / 255.0
    max_val = x.max()
    x = x + c[0] * plasma_fractal(wibbledecay=c[1])[:28, :28]
    x = np.clip(x * max_val / (max_val + c[0]), 0, 1) * 255
    return x.astype(np.float32)


def spatter(x, severity=4):
    c = [
        (0.65, 0.3, 4, 0.69, 0.6, 0),
        (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1),
    ][severity - 1]

    x = np.array(x, dtype=np.float32) / 255.0

    liquid_layer = np.random.normal(size=x.shape, loc=c[0], scale=c[1])

    liquid_layer = gaussian(liquid_layer, sigma=c[2])
    liquid_layer[liquid_layer < c[3]] = 0

    m = np.where(liquid_layer > c[3], 1, 0)
    m = gaussian(m.astype(np.float32), sigma=c[4])
    m[m < 0.8] = 0

    # mud spatter
    color = 63 / 255.0 * np.ones_like(x) * m
    x *= 1 - m

    return np.clip(x + color, 0, 1) * 255


def brightness(x, severity=5):
    c = [0.1, 0.2, 0.3, 0.4, 0.5][severity - 1]

    x = np.array(x) / 255.0
    x = sk.color.gray2rgb(x)
    x = sk.color.rgb2hsv(x)
    x[:, :, 2] = np.clip(x[:, :, 2] + c, 0, 1)
    x = sk.color.hsv2rgb(x)
    x = sk.color.rgb2gray(x)

    x = np.clip(x, 0, 1) * 255
    return x.astype(np.float32)


def shear(x, severity=2):
    c = [0.2, 0.4, 0.6, 0.8, 1.0][severity - 1]

    # Randomly switch directions
    bit = np.random.choice([-1, 1], 1)[0]
    c *= bit
    # PORT: old_affine_matrix(shear=c) for AffineTransform(shear=c) (redefined in skimage 0.21).
    aff = transform.AffineTransform(matrix=old_affine_matrix(shear=c))

    # Calculate translation in order to keep image center (13.5, 13.5) fixed
    a1, a2 = aff.params[0, :2]
    b1, b2 = aff.params[1, :2]
    a3 = 13.5 * (1 - a1 - a2)
    b3 = 13.5 * (1 - b1 - b2)
    aff = transform.AffineTransform(matrix=old_affine_matrix(shear=c, translation=[a3, b3]))

    x = np.array(x) / 255.0
    x = transform.warp(x, inverse_map=aff)
    x = np.clip(x, 0, 1) * 255.0
    return x.astype(np.float32)


def rotate(x, severity=2):
    c = [0.2, 0.4, 0.6, 0.8, 1.0][severity - 1]

    # Randomly switch directions
    bit = np.random.choice([-1, 1], 1)[0]
    c *= bit
    # PORT: old_affine_matrix(rotation=c) for AffineTransform(rotation=c), as in shear.
    aff = transform.AffineTransform(matrix=old_affine_matrix(rotation=c))

    a1, a2 = aff.params[0, :2]
    b1, b2 = aff.params[1, :2]
    a3 = 13.5 * (1 - a1 - a2)
    b3 = 13.5 * (1 - b1 - b2)
    aff = transform.AffineTransform(matrix=old_affine_matrix(rotation=c, translation=[a3, b3]))

    x = np.array(x) / 255.0
    x = transform.warp(x, inverse_map=aff)
    x = np.clip(x, 0, 1) * 255
    return x.astype(np.float32)


def scale(x, severity=3):
    c = [
        (1 / 0.9, 1 / 0.9),
        (1 / 0.8, 1 / 0.8),
        (1 / 0.7, 1 / 0.7),
        (1 / 0.6, 1 / 0.6),
        (1 / 0.5, 1 / 0.5),
    ][severity - 1]

    # PORT: old_affine_matrix(scale=c) for AffineTransform(scale=c), as in shear.
    aff = transform.AffineTransform(matrix=old_affine_matrix(scale=c))

    a1, a2 = aff.params[0, :2]
    b1, b2 = aff.params[1, :2]
    a3 = 13.5 * (1 - a1 - a2)
    b3 = 13.5 * (1 - b1 - b2)
    aff = transform.AffineTransform(matrix=old_affine_matrix(scale=c, translation=[a3, b3]))

    x = np.array(x) / 255.0
    x = transform.warp(x, inverse_map=aff)
    x = np.clip(x, 0, 1) * 255
    return x.astype(np.float32)


def translate(x, severity=3):
    c = [1, 2, 3, 4, 5][severity - 1]
    bit = np.random.choice([-1, 1], 2)
    dx = c * bit[0]
    dy = c * bit[1]
    # PORT: old_affine_matrix(translation=...) for AffineTransform(translation=...), as in shear.
    aff = transform.AffineTransform(matrix=old_affine_matrix(translation=[dx, dy]))

    x = np.array(x) / 255.0
    x = transform.warp(x, inverse_map=aff)
    x = np.clip(x, 0, 1) * 255
    return x.astype(np.float32)


def dotted_line(x):
    x = np.array(x) / 255.0
    r0, r1 = np.random.randint(low=0, high=27, size=2)
    corruption = line_from_points(0, r0, 27, r1)

    idx = np.arange(0, 30, 2)
    off = True
    for i in range(1, len(idx)):
        if off:
            corruption[:, idx[i - 1] : idx[i]] = 0
        off = not off

    x = np.clip(x + corruption, 0, 1) * 255
    return x.astype(np.float32)


def zigzag(x):
    x = np.array(x) / 255.0
    # a, b are length and width of zigzags
    a = 2.0
    b = 2.0

    c0, c1 = 2, 25
    r0 = np.random.randint(low=0, high=27)
    r1 = r0 + np.random.randint(low=-5, high=5)

    theta = np.arctan((r1 - r0) / (c1 - c0))

    # Calculate length of straight line
    d = (c1 - c0) / np.cos(theta)
    endpoints = [(0, 0)]

    for i in range(int((d - a) // (2 * a)) + 1):
        c_i = (2 * i + 1) * a
        r_i = (-1) ** i * b
        endpoints.append((c_i, r_i))

    max_c = (2 * a) * (d // (2 * a))
    if d != max_c:
        endpoints.append((d, r_i / (2 * (d - max_c))))
    endpoints = np.array(endpoints).T

    # Rotate by theta
    M = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])  # noqa: N806
    endpoints = M.dot(endpoints)

    cs, rs = endpoints
    cs += c0
    rs += r0

    for i in range(1, endpoints.shape[1]):
        x += line_from_points(cs[i - 1], rs[i - 1], cs[i], rs[i])
        x = np.clip(x, 0, 1)

    x = x * 255
    return x.astype(np.float32)


def stripe(x):
    x = np.array(x).astype(np.float32)
    x[:, :7] = 255.0 - x[:, :7]
    x[:, 21:] = 255.0 - x[:, 21:]
    return x


def canny_edges(x):
    x = np.array(x) / 255.0
    x = feature.canny(x).astype(np.float32)
    return x * 255


# /////////////// End Corruptions ///////////////


def corrupt(images: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    """Apply the MNIST-C corruption `name` (one of CORRUPTIONS) at its default severity to each
    uint8 digit of `images` (N, 28, 28), in order; returns float32 (N, 28, 28) on [0, 255].

    Seeding: the original draws from NumPy's global random state and its repository sets no
    seed (the script and seed behind the published dataset are not public). Here the global
    state is seeded with `seed` before the first image of each corruption, so a corruption's
    output depends only on the images and the seed; the caller's global state is restored.
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}: one of {', '.join(CORRUPTIONS)}")
    function = globals()[name]
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        out = [function(Image.fromarray(image, mode="L")) for image in np.asarray(images)]
    finally:
        np.random.set_state(saved)
    return np.stack(out).astype(np.float32)


def to_uint8(corrupted: np.ndarray) -> np.ndarray:
    """Float images on [0, 255] -> uint8 by clipping and truncating (numpy's astype), the
    8-bit form the published MNIST-C files store."""
    return np.clip(corrupted, 0, 255).astype(np.uint8)
