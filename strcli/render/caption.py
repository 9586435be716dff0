"""The caption a render burns into every frame when its bodies are not real results:
untrained (randomly initialised) networks or the generated test body, as the output's
manifest records them (`overlay_caveats`), drawn legibly at any frame size (`draw_caption`).
The manifest, the warnings and the exports say the same in words; a video travels without
them, so the frames say it too.
"""

from __future__ import annotations

import cv2
import numpy as np

from strcli.road.caveats import overlay_caveats  # noqa: F401 (re-exported: the caption's text)


def caption_scale(height: int) -> float:
    """The caption's OpenCV font scale for a frame `height` pixels tall: height/1000, at least
    0.5; its capitals are then 29 px tall at 1080 and never under 14 px (`cv2.getTextSize`)."""
    return max(0.5, height / 1000)


CAPTION_SHARE = 0.25  # the most of a frame's height the caption may cover
SMALLEST_SCALE = 0.3  # the smallest font scale the caption shrinks to (capitals 9 px tall)
_SHORT_CAPTION = "TEST ONLY"  # what a frame too small for the whole caption carries


def draw_caption(image: np.ndarray, text: str) -> tuple[int, int]:
    """`text` in white on a dark band along the bottom-left of `image` ((H, W, 3) uint8, in
    place: one panel of a render, never the frame its panels make together), wrapped at word
    boundaries to the image's width; returns the band's top row and right column (right <= W:
    nothing is drawn right of it nor above the top). Sized by `caption_scale`, smaller (down to
    SMALLEST_SCALE) where the wrapped text would cover more than CAPTION_SHARE of the height or
    a single word is wider than the image; a frame too small even then (a thumbnail, a narrow
    panel) gets "TEST ONLY", its words split between letters if one is still too wide."""
    height, width = image.shape[:2]
    scale = caption_scale(height)
    while True:
        lines, thickness, pad, step = _caption_layout(text, width, scale)
        if step * len(lines) + pad <= CAPTION_SHARE * height and _widest(lines, scale, thickness) <= width - 2 * pad:
            break
        if scale <= SMALLEST_SCALE:
            lines, thickness, pad, step = _caption_layout(_SHORT_CAPTION, width, scale, split=True)
            break
        scale = max(SMALLEST_SCALE, scale * 0.85)
    font = cv2.FONT_HERSHEY_SIMPLEX
    top = max(0, height - pad - step * len(lines) - pad // 2)
    right = min(width, 2 * pad + _widest(lines, scale, thickness))
    cv2.rectangle(image, (0, top), (right - 1, height - 1), (20, 20, 20), -1)
    rise = cv2.getTextSize("Ag", font, scale, thickness)[0][1]
    for k, line in enumerate(lines):
        cv2.putText(image, line, (pad, top + pad + rise + k * step), font, scale, (255, 255, 255), thickness,
                    cv2.LINE_AA)
    return top, right


def _widest(lines: list[str], scale: float, thickness: int) -> int:
    """The width in pixels of the widest of `lines` at font `scale`."""
    return max(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0] for line in lines)


def _caption_layout(text: str, width: int, scale: float, split: bool = False) -> tuple[list[str], int, int, int]:
    """`text` wrapped to `width` at font `scale`: (lines, stroke thickness, padding, line step),
    pixels. A word wider than the room stays whole on its own line (the caller shrinks the
    font), or with `split` is cut between letters to fit (one letter a line at least)."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    thickness = max(1, round(1.6 * scale))
    pad = max(2, round(6 * scale))
    room = width - 2 * pad

    def fits(piece: str) -> bool:
        return cv2.getTextSize(piece, font, scale, thickness)[0][0] <= room

    words: list[str] = []
    for word in text.split():
        while split and len(word) > 1 and not fits(word):
            cut = max([k for k in range(1, len(word)) if fits(word[:k])], default=1)
            words.append(word[:cut])
            word = word[cut:]
        words.append(word)
    lines: list[str] = []
    for word in words:
        joined = f"{lines[-1]} {word}" if lines else word
        if lines and fits(joined):
            lines[-1] = joined
        else:
            lines.append(word)
    (_, h), base = cv2.getTextSize("Ag", font, scale, thickness)
    return lines, thickness, pad, h + base + pad // 2
