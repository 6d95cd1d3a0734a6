"""What the demo media look like: Pillow drawings, frame-by-frame video scenes and synthesized audio.

Each generator is registered under its file name with ``@_media``; ``anycapeval.demo.media`` writes
them to disk. Everything is a pure function of this code (noise uses fixed seeds).
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

W, H = 320, 240  # image and video frame size
FPS, N_FRAMES = 10, 20  # 2-second clips
SR = 16_000  # audio sample rate

SKY, GRASS, BROWN, LEAF = (135, 206, 235), (60, 170, 60), (120, 72, 30), (34, 139, 34)
RED, BLUE, YELLOW, WHITE, BLACK = (210, 40, 40), (40, 80, 210), (250, 215, 40), (255, 255, 255), (0, 0, 0)

# modality -> file name -> generator. Images: () -> PIL image; videos: frame index -> PIL image;
# audio: () -> float samples at SR.
GENERATORS: dict[str, dict[str, Callable]] = {"image": {}, "video": {}, "audio": {}}
_MODALITY = {".png": "image", ".mp4": "video", ".wav": "audio"}


def _media(name: str) -> Callable[[Callable], Callable]:
    def register(fn: Callable) -> Callable:
        GENERATORS[_MODALITY[pathlib.Path(name).suffix]][name] = fn
        return fn

    return register


def _canvas(sky=SKY, ground=GRASS, horizon=170, width=W) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", (width, H), sky)
    d = ImageDraw.Draw(img)
    d.rectangle([0, horizon, width, H], fill=ground)
    return img, d


def _circle(d: ImageDraw.ImageDraw, x: float, y: float, r: float, fill, outline=None) -> None:
    d.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=outline, width=2)


def _tree(d: ImageDraw.ImageDraw, x: int, ground: int = 185) -> None:
    d.rectangle([x - 7, ground - 55, x + 7, ground], fill=BROWN)
    _circle(d, x, ground - 70, 30, LEAF)


def _house(d: ImageDraw.ImageDraw, x: int, wall, ground: int = 180) -> None:
    d.rectangle([x - 40, ground - 70, x + 40, ground], fill=wall)
    d.polygon([(x - 50, ground - 70), (x + 50, ground - 70), (x, ground - 115)], fill=(100, 55, 25))
    d.rectangle([x - 10, ground - 40, x + 10, ground], fill=(90, 50, 20))
    for wx in (x - 30, x + 16):
        d.rectangle([wx, ground - 55, wx + 14, ground - 41], fill=(255, 240, 150))


def _stick(d: ImageDraw.ImageDraw, x: float, feet: float, size: float, swing: float = 0.0) -> tuple:
    """A stick figure; `swing` in [-1, 1] moves legs and arms. Returns the right-hand point."""
    head_r, hip, neck = size * 0.12, feet - size * 0.45, feet - size * 0.85
    _circle(d, x, neck - head_r, head_r, (255, 220, 180), BLACK)
    d.line([(x, neck), (x, hip)], fill=BLACK, width=3)
    step = size * 0.2 * swing
    d.line([(x, hip), (x - size * 0.15 + step, feet)], fill=BLACK, width=3)
    d.line([(x, hip), (x + size * 0.15 - step, feet)], fill=BLACK, width=3)
    shoulder = neck + size * 0.1
    hand = (x + size * 0.25 + step, shoulder + size * 0.25)
    d.line([(x, shoulder), (x - size * 0.25 - step, shoulder + size * 0.25)], fill=BLACK, width=3)
    d.line([(x, shoulder), hand], fill=BLACK, width=3)
    return hand


# ----------------------------------------------------------------------------------------- images
@_media("sunny_house.png")
def img_sunny_house() -> Image.Image:
    img, d = _canvas()
    _circle(d, 50, 45, 25, YELLOW)
    for a in np.arange(8) * np.pi / 4:  # short rays
        ray = [(50 + r * np.cos(a), 45 + r * np.sin(a)) for r in (32, 44)]
        d.line(ray, fill=YELLOW, width=3)
    _house(d, 150, RED)
    _tree(d, 260)
    return img


@_media("sailboat.png")
def img_sailboat() -> Image.Image:
    img, d = _canvas(sky=(255, 200, 140), ground=(30, 70, 150), horizon=130)
    d.pieslice([222, 102, 278, 158], 180, 360, fill=(240, 90, 30))  # sun setting on the horizon
    d.polygon([(105, 160), (195, 160), (178, 182), (122, 182)], fill=RED)  # hull
    d.line([(150, 160), (150, 75)], fill=BLACK, width=3)  # mast
    d.polygon([(154, 80), (154, 155), (195, 155)], fill=WHITE)  # sail
    for y in (200, 215):
        d.line([(60, y), (100, y)], fill=(120, 160, 230), width=2)
        d.line([(200, y + 5), (240, y + 5)], fill=(120, 160, 230), width=2)
    return img


@_media("balloon_kids.png")
def img_balloon_kids() -> Image.Image:
    img, d = _canvas(horizon=175)
    hand = _stick(d, 90, 215, 90)
    d.line([hand, (70, 78)], fill=BLACK, width=1)  # string held by the small figure
    d.ellipse([50, 30, 90, 80], fill=RED)
    _stick(d, 230, 215, 130)
    _circle(d, 160, 205, 10, YELLOW)
    return img


@_media("still_life.png")
def img_still_life() -> Image.Image:
    img, d = _canvas(sky=(235, 225, 200), ground=(140, 90, 50), horizon=150)
    d.rectangle([120, 20, 200, 90], fill=SKY, outline=WHITE, width=4)
    d.line([(160, 20), (160, 90)], fill=WHITE, width=4)
    d.line([(120, 55), (200, 55)], fill=WHITE, width=4)
    _circle(d, 80, 132, 18, RED)  # apple
    d.line([(80, 114), (82, 106)], fill=BROWN, width=3)
    d.ellipse([84, 104, 96, 112], fill=LEAF)
    d.rectangle([140, 105, 178, 150], fill=BLUE)  # mug
    d.arc([168, 115, 192, 140], -90, 90, fill=BLUE, width=5)
    _circle(d, 240, 133, 17, (255, 140, 0))  # orange
    return img


@_media("night_city.png")
def img_night_city() -> Image.Image:
    img, d = _canvas(sky=(15, 20, 60), ground=(45, 45, 45), horizon=215)
    rng = np.random.default_rng(7)
    for sx, sy in zip(rng.integers(5, 315, 18), rng.integers(5, 60, 18), strict=True):
        d.rectangle([sx, sy, sx + 1, sy + 1], fill=WHITE)
    _circle(d, 270, 40, 20, (250, 245, 200))
    _circle(d, 280, 34, 18, (15, 20, 60))  # bite out of the moon: a crescent
    for x0, top in ((20, 110), (110, 70), (200, 130)):
        d.rectangle([x0, top, x0 + 70, 215], fill=(110, 110, 120))
        for i, wy in enumerate(range(top + 10, 205, 20)):
            for j, wx in enumerate(range(x0 + 10, x0 + 60, 20)):
                lit = (i * 3 + j * 5 + x0) % 4 != 0
                d.rectangle([wx, wy, wx + 9, wy + 9], fill=(255, 220, 90) if lit else (40, 40, 50))
    return img


# ----------------------------------------------------------------------------------------- videos
@_media("ball_roll.mp4")
def vid_ball_roll(t: int) -> Image.Image:
    img, d = _canvas(horizon=160)
    _circle(d, 280, 35, 20, YELLOW)
    for cx, cy, r in ((80, 50, 18), (100, 42, 22), (122, 50, 18)):
        _circle(d, cx, cy, r, WHITE)
    _circle(d, 20 + 280 * t / (N_FRAMES - 1), 185, 15, RED)
    return img


@_media("color_square.mp4")
def vid_color_square(t: int) -> Image.Image:
    img = Image.new("RGB", (W, H), (225, 225, 225))
    color = (RED, (40, 170, 60), BLUE)[t * 3 // N_FRAMES]
    ImageDraw.Draw(img).rectangle([110, 70, 210, 170], fill=color)
    return img


@functools.lru_cache(maxsize=1)
def _village_panorama() -> Image.Image:
    img, d = _canvas(width=2 * W)
    for x in (40, 210, 370, 540):
        _tree(d, x)
    for x, wall in ((120, RED), (290, YELLOW), (450, BLUE)):
        _house(d, x, wall)
    return img


@_media("pan_village.mp4")
def vid_pan_village(t: int) -> Image.Image:
    x0 = round(W * t / (N_FRAMES - 1))  # the view slides right across the panorama
    return _village_panorama().crop((x0, 0, x0 + W, H))


@_media("stick_walk.mp4")
def vid_stick_walk(t: int) -> Image.Image:
    img, d = _canvas(horizon=170)
    d.rectangle([0, 195, W, 225], fill=(150, 150, 150))
    _tree(d, 50)
    _stick(d, 280 - 150 * t / (N_FRAMES - 1), 215, 80, swing=float(np.sin(t * np.pi / 2.5)))
    return img


@_media("box_drop.mp4")
def vid_box_drop(t: int) -> Image.Image:
    img, d = _canvas(sky=(250, 240, 200), ground=(130, 130, 130), horizon=190)
    half = N_FRAMES // 2
    if t < half:  # falls under gravity, touching the floor at the end of the first second
        x, bottom = 60.0, 190 * (t / (half - 1)) ** 2
    else:  # then slides right along the floor
        x, bottom = 60 + 140 * (t - half + 1) / half, 190
    d.rectangle([x, bottom - 40, x + 40, bottom], fill=BLUE)
    return img


# ----------------------------------------------------------------------------------------- audio
def _tone(freq: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    y = amp * np.sin(2 * np.pi * freq * t)
    ramp = min(len(y) // 2, int(0.01 * SR))  # 10 ms fades: no clicks at the edges
    y[:ramp] *= np.linspace(0, 1, ramp)
    y[-ramp:] *= np.linspace(1, 0, ramp)
    return y


@_media("three_beeps.wav")
def aud_three_beeps() -> np.ndarray:
    parts = [np.zeros(int(SR * 0.1))]
    for f in (440.0, 660.0, 880.0):
        parts += [_tone(f, 0.3), np.zeros(int(SR * 0.3))]
    return np.concatenate(parts + [np.zeros(int(SR * 0.1))])


@_media("rising_sweep.wav")
def aud_rising_sweep() -> np.ndarray:
    t = np.arange(3 * SR) / SR
    f0, f1, dur = 200.0, 2000.0, 3.0  # exponential sweep: phase = integral of f0 * (f1/f0)**(t/dur)
    phase = 2 * np.pi * f0 * dur / np.log(f1 / f0) * ((f1 / f0) ** (t / dur) - 1)
    return 0.4 * np.sin(phase) * np.minimum(1, np.minimum(t, 3 - t) / 0.05)


@_media("clicks.wav")
def aud_clicks() -> np.ndarray:
    y = np.zeros(3 * SR)
    click = np.sin(2 * np.pi * 1500 * np.arange(160) / SR) * np.exp(-np.arange(160) / 30)
    for k in range(12):  # four clicks a second
        start = int((0.05 + 0.25 * k) * SR)
        y[start : start + 160] += 0.8 * click
    return y


@_media("rain_noise.wav")
def aud_rain_noise() -> np.ndarray:
    noise = np.random.default_rng(1234).standard_normal(3 * SR)
    smooth = np.convolve(noise, np.ones(4) / 4, mode="same")  # soften the top end a little
    t = np.arange(3 * SR) / SR
    return 0.25 * smooth * np.minimum(1, np.minimum(t, 3 - t) / 0.5)


@_media("chord.wav")
def aud_chord() -> np.ndarray:
    t = np.arange(int(2.5 * SR)) / SR
    y = sum(np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.00))  # C major: C4 E4 G4
    return 0.25 * y * np.exp(-t / 1.2) * np.minimum(1, t / 0.01)


@_media("silence_tone.wav")
def aud_silence_tone() -> np.ndarray:
    return np.concatenate([np.zeros(int(SR * 1.5)), _tone(880.0, 1.5)])  # a high A5 after a pause
