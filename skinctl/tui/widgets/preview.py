"""Image preview: textual-image where the terminal speaks a graphics protocol (Sixel, Kitty
TGP), otherwise an explicit half-cell renderer ("▀" with the top pixel as foreground and the
bottom one as background). The half-cell path is deterministic, so snapshots are stable."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, cast

from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.widget import Widget

if TYPE_CHECKING:
    from PIL import Image  # imported when an image is first decoded: not on the startup path

THUMBNAIL_PX = 320  # decoded once in a worker; drawing then resizes a small image only


def decode_for_preview(data: bytes) -> Image.Image:
    """Bytes -> a small RGB image (run it in a worker: big photos take tens of ms)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (THUMBNAIL_PX, THUMBNAIL_PX))  # JPEG: decode reduced, much faster
    image = image.convert("RGB")
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    return image


class HalfCell:
    """A Rich renderable drawing an image with two pixels per cell, fitted and centred."""

    def __init__(
        self, image: Image.Image, width: int | None = None, height: int | None = None
    ) -> None:
        self.image = image
        self.width, self.height = width, height
        self._cache: tuple[tuple[int, int], list[list[Segment]]] | None = None

    def _lines(self, width: int, height: int) -> list[list[Segment]]:
        if self._cache and self._cache[0] == (width, height):
            return self._cache[1]
        w, h = self.image.size
        scale = min(width / w, (height * 2) / h)
        tw, th = max(1, int(w * scale)), max(2, int(h * scale))
        th -= th % 2
        from PIL.Image import Resampling

        small = self.image.resize((tw, th), Resampling.BILINEAR)
        pixels = small.load()
        assert pixels is not None  # a resized image is loaded: it has pixel access
        pad = " " * ((width - tw) // 2)
        lines = []
        for y in range(0, th, 2):
            line = [Segment(pad)] if pad else []
            for x in range(tw):
                # An RGB image's pixels are (r, g, b); PIL's stubs type any mode's pixel.
                top = cast("tuple[int, int, int]", pixels[x, y])
                bottom = cast("tuple[int, int, int]", pixels[x, y + 1])
                line.append(
                    Segment("▀", Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom)))
                )
            lines.append(line)
        self._cache = ((width, height), lines)
        return lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self.width or options.max_width
        height = self.height or options.height or options.max_height or 20
        for line in self._lines(max(1, width), max(1, height)):
            yield from line
            yield Segment.line()


def graphics_protocol_available() -> bool:
    """True when textual-image found Sixel or TGP (it asks the terminal at import time, so
    `skinctl.tui.app.run_tui` imports it before the app starts)."""
    try:
        from textual_image.renderable import Image as Auto
        from textual_image.renderable.sixel import Image as Sixel
        from textual_image.renderable.tgp import Image as Tgp
    except Exception:  # noqa: BLE001 - any failure means: draw half cells
        return False
    return Auto in (Sixel, Tgp)


class HalfCellView(Widget):
    """Draws its image in half cells at exactly its own size."""

    DEFAULT_CSS = "HalfCellView { width: 1fr; height: 1fr; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image: Image.Image | None = None
        self.message = "no image"
        self._renderable: HalfCell | None = None

    def set_image(self, image: Image.Image | None, message: str = "no image") -> None:
        self.image, self.message = image, message
        self._renderable = HalfCell(image) if image is not None else None
        self.refresh()

    def render(self) -> str | HalfCell:
        if self._renderable is None:
            return self.message
        self._renderable.width, self._renderable.height = self.size.width, self.size.height
        return self._renderable


class ImagePreview(Widget):
    """Shows one image (a PIL image) or a message. `renderer`: "auto" or "halfcell"."""

    DEFAULT_CSS = """
    ImagePreview { height: 1fr; }
    """

    def __init__(self, renderer: str = "auto", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.use_graphics = renderer == "auto" and graphics_protocol_available()

    def compose(self) -> ComposeResult:
        if self.use_graphics:
            from textual_image.widget import Image as GraphicsImage

            yield GraphicsImage(id="graphics")
        yield HalfCellView(id="halfcell")

    @property
    def image(self) -> Image.Image | None:
        return self.query_one(HalfCellView).image

    def show(self, image: Image.Image | None, message: str = "no image") -> None:
        cells = self.query_one(HalfCellView)
        if self.use_graphics:
            from textual_image.widget import Image as GraphicsImage

            graphics = self.query_one("#graphics", GraphicsImage)
            graphics.image = image
            graphics.display = image is not None
            cells.display = image is None
            cells.set_image(None, message)
            cells.image = image
            return
        cells.set_image(image, message)
