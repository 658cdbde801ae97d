"""WCAG 2 contrast ratios (https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio), for the tests."""

from __future__ import annotations

RGB = tuple[float, float, float]

#: WCAG AA for normal text.
AA = 4.5


def hex_rgb(colour: str) -> RGB:
    """``"#2563eb"`` -> ``(37, 99, 235)``."""
    text = colour.lstrip("#")
    return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))


def luminance(rgb: RGB) -> float:
    """Relative luminance of an sRGB colour with 0-255 channels."""
    linear = []
    for channel in rgb:
        c = channel / 255
        linear.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    red, green, blue = linear
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(foreground: RGB, background: RGB) -> float:
    """From 1 (the same) to 21 (black on white)."""
    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def over(colour: tuple[float, float, float, float], background: RGB) -> RGB:
    """``colour`` (RGBA, alpha 0-1) painted over an opaque ``background``."""
    *rgb, alpha = colour
    return (
        rgb[0] * alpha + background[0] * (1 - alpha),
        rgb[1] * alpha + background[1] * (1 - alpha),
        rgb[2] * alpha + background[2] * (1 - alpha),
    )
