"""``imageResize`` and ``imageConvert`` (Pillow): the resize plan, decoding under the pixel guard,
encoding; see :mod:`pipelines.operators.files` for sources and outputs."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

from pipelines.errors import ConfigError, RecordError
from pipelines.operators.base import OperatorContext, record_operator
from pipelines.operators.files._writer import (
    ALGORITHM_VERSION,
    OUTPUT_PROPS,
    Writer,
    compile_path,
    positive_int,
    stored_digest,
)
from pipelines.operators.files.sources import DEFAULT_MAX_SOURCE_BYTES, SourceReader
from pipelines.records import MISSING

IMAGE_DIR = "datahub/images/"
DEFAULT_MAX_PIXELS = 40_000_000
# libavif speed: 0 (slowest, smallest) to 10. Pillow's default 6 spends ~380 ms on a 800x600 frame; 8 halves
# that for a few percent more bytes, and 10 is 13x faster but ~45% bigger (research/stack-check.md).
_AVIF_SPEED = 8
# Pillow's reducing_gap (as in Image.thumbnail): box reduction takes a decoded image down to at most this
# multiple of the target before the final Lanczos pass, which keeps quality and saves time.
_REDUCING_GAP = 2.0
# A JPEG is decoded at 1/2, 1/4 or 1/8 scale straight from its DCT coefficients, as small as possible while
# still at least the target size (sharp's shrink-on-load, which it does by default): the scaled inverse DCT
# filters as it shrinks, and it costs a quarter less CPU per image than decoding at twice the target size.
_DRAFT_GAP = 1.0
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class _Format:
    pillow: str
    ext: str
    mime: str
    alpha: bool
    quality: int | None  # default quality; None where quality has no meaning


FORMATS = {
    "jpeg": _Format("JPEG", "jpg", "image/jpeg", False, 80),
    "png": _Format("PNG", "png", "image/png", True, None),
    "webp": _Format("WEBP", "webp", "image/webp", True, 80),
    "avif": _Format("AVIF", "avif", "image/avif", True, 60),
    "gif": _Format("GIF", "gif", "image/gif", True, None),
}
_FORMAT_ALIASES = {"jpg": "jpeg"}
_PILLOW_TO_FORMAT = {**{f.pillow: key for key, f in FORMATS.items()}, "MPO": "jpeg"}
# What a source may be: not every format Pillow knows (EPS would run Ghostscript on untrusted input).
# JPEG covers MPO, the multi-picture JPEG of some cameras.
_READABLE = ("JPEG", "PNG", "WEBP", "AVIF", "GIF", "BMP", "TIFF", "ICO")
FITS = ("COVER", "CONTAIN", "FILL", "INSIDE", "OUTSIDE")

# --------------------------------------------------------------------------------------------- schemas

_SOURCE_DOC = (
    "Field holding the image: a data URI (data:image/png;base64,...), an http(s) URL (fetched through the "
    "guarded HTTP client), a file name in the configured storage, or plain base64. A missing or empty "
    "value leaves the record unchanged."
)
_COMMON_IMAGE_PROPS: dict[str, Any] = {
    "sourceField": {"type": "string", "description": _SOURCE_DOC},
    "targetField": {
        "type": "string",
        "description": "Field that receives the result (a storage name or a data URI); defaults to sourceField.",
    },
    "quality": {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "description": "Encoder quality for jpeg, webp and avif (defaults 80, 80 and 60); ignored for png and gif.",
    },
    "background": {
        "type": "string",
        "description": "Colour for letterboxing (fit CONTAIN) and for flattening transparency into JPEG: a CSS "
        "colour such as '#ffffff', 'white', 'rgba(0,0,0,0)' or 'transparent'. Default: transparent, "
        "white when the output format has no alpha channel.",
    },
    "output": OUTPUT_PROPS["output"],
    "urlField": OUTPUT_PROPS["urlField"],
    "maxPixels": {
        "type": "integer",
        "minimum": 1,
        "default": DEFAULT_MAX_PIXELS,
        "description": "Largest image (width x height, source and result) accepted; a bigger one is a record "
        "error, the guard against decompression bombs.",
    },
    "maxSourceBytes": {
        "type": "integer",
        "minimum": 1,
        "default": DEFAULT_MAX_SOURCE_BYTES,
        "description": "Largest encoded source accepted, in bytes.",
    },
    "timeoutMs": {
        "type": "integer",
        "minimum": 1,
        "description": "Timeout for fetching a URL source; default: the HTTP client's.",
    },
}

IMAGE_RESIZE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "sourceField": _COMMON_IMAGE_PROPS["sourceField"],
        "targetField": _COMMON_IMAGE_PROPS["targetField"],
        "width": {
            "type": "integer",
            "minimum": 1,
            "maximum": 20000,
            "description": "Target width in pixels. With only one of width and height the other follows the "
            "aspect ratio; with neither, the image is not resized.",
        },
        "height": {
            "type": "integer",
            "minimum": 1,
            "maximum": 20000,
            "description": "Target height in pixels.",
        },
        "fit": {
            "type": "string",
            "enum": [*FITS, *(f.lower() for f in FITS)],
            "default": "COVER",
            "description": "How the image fits width x height (as in sharp): COVER keeps the aspect ratio and "
            "crops to exactly WxH; CONTAIN keeps it and letterboxes to exactly WxH with the background; "
            "FILL stretches to WxH; INSIDE keeps it and fits within WxH; OUTSIDE keeps it and covers at "
            "least WxH.",
        },
        "withoutEnlargement": {
            "type": "boolean",
            "default": False,
            "description": "Never scale an image up; the result may then be smaller than WxH.",
        },
        "format": {
            "type": "string",
            "enum": [*FORMATS, *_FORMAT_ALIASES],
            "description": "Output format; default: the source's format (png when Pillow cannot write it).",
        },
        **{k: v for k, v in _COMMON_IMAGE_PROPS.items() if k not in ("sourceField", "targetField")},
    },
    "required": ["sourceField"],
    "additionalProperties": False,
}

IMAGE_CONVERT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "sourceField": _COMMON_IMAGE_PROPS["sourceField"],
        "targetField": _COMMON_IMAGE_PROPS["targetField"],
        "format": {
            "type": "string",
            "enum": [*FORMATS, *_FORMAT_ALIASES],
            "description": "Output format.",
        },
        **{k: v for k, v in _COMMON_IMAGE_PROPS.items() if k not in ("sourceField", "targetField")},
    },
    "required": ["sourceField", "format"],
    "additionalProperties": False,
}


# --------------------------------------------------------------------------------------------- images


def _pillow():
    from PIL import Image, ImageColor, ImageOps

    return Image, ImageColor, ImageOps


def _parse_format(args: dict, key: str = "format") -> str | None:
    value = args.get(key)
    if value is None:
        return None
    fmt = _FORMAT_ALIASES.get(str(value).lower(), str(value).lower())
    if fmt not in FORMATS:
        raise ConfigError(f"must be one of {', '.join(FORMATS)}", field=key)
    return fmt


def _parse_background(args: dict) -> tuple[int, int, int, int] | None:
    value = args.get("background")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError("must be a CSS colour string", field="background")
    if value.strip().lower() == "transparent":
        return (0, 0, 0, 0)
    _, ImageColor, _ = _pillow()
    try:
        rgba = ImageColor.getcolor(value.strip(), "RGBA")
    except ValueError:
        raise ConfigError(
            f"'{value}' is not a colour (try '#ffffff', 'white' or 'transparent')", field="background"
        ) from None
    return tuple(rgba)


@dataclass(frozen=True)
class _Plan:
    """What to do to an oriented image of a given size: resize ``box`` (a source region) to ``size``, then
    centre it on a ``canvas`` when letterboxing."""

    size: tuple[int, int]
    box: tuple[float, float, float, float] | None = None
    canvas: tuple[int, int] | None = None
    scale: tuple[float, float] = (1.0, 1.0)  # output/input per axis, for JPEG draft decoding


def plan_resize(
    src: tuple[int, int], width: int | None, height: int | None, fit: str, without_enlargement: bool = False
) -> _Plan | None:
    """The geometry of sharp's fits, for a source of ``src`` pixels (already EXIF-oriented).

    None means no resize (no width and no height, or withoutEnlargement on an image already small enough).
    """
    w, h = src
    if not width and not height:
        return None
    if not width or not height:
        s = width / w if width else height / h
        if without_enlargement and s >= 1:
            return None
        return _Plan((max(1, round(w * s)), max(1, round(h * s))), scale=(s, s))
    sx, sy = width / w, height / h
    if fit == "FILL":
        if without_enlargement:
            sx, sy = min(sx, 1.0), min(sy, 1.0)
        return _Plan((max(1, round(w * sx)), max(1, round(h * sy))), scale=(sx, sy))
    s = max(sx, sy) if fit in ("COVER", "OUTSIDE") else min(sx, sy)
    if without_enlargement:
        s = min(s, 1.0)
    scaled = (max(1, round(w * s)), max(1, round(h * s)))
    if fit == "COVER":
        out = (min(width, scaled[0]), min(height, scaled[1]))
        bw, bh = out[0] / s, out[1] / s
        left, top = (w - bw) / 2, (h - bh) / 2
        return _Plan(out, box=(left, top, left + bw, top + bh), scale=(s, s))
    if fit in ("INSIDE", "OUTSIDE"):
        return _Plan(scaled, scale=(s, s))
    # CONTAIN
    inner = (min(width, scaled[0]), min(height, scaled[1]))
    return _Plan(inner, canvas=(width, height), scale=(s, s))


class _ImageJob:
    """One configured image operation; ``run(data)`` returns (encoded bytes, format key)."""

    def __init__(self, args: dict, ctx: OperatorContext, *, code: str, resize: bool):
        self.Image, _, self.ImageOps = _pillow()
        self.code = code
        self.field = args["sourceField"]
        self.max_pixels = positive_int(args, "maxPixels", DEFAULT_MAX_PIXELS)
        self.format = _parse_format(args)
        if not resize and self.format is None:
            raise ConfigError("is required", field="format")
        self.quality = args.get("quality")
        if self.quality is not None and (
            isinstance(self.quality, bool)
            or not isinstance(self.quality, int)
            or not 1 <= self.quality <= 100
        ):
            raise ConfigError("must be an integer from 1 to 100", field="quality")
        self.background = _parse_background(args)
        self.width = self.height = None
        self.fit = "COVER"
        self.without_enlargement = False
        if resize:
            for key in ("width", "height"):
                value = args.get(key)
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                    raise ConfigError("must be a positive integer", field=key)
            self.width, self.height = args.get("width"), args.get("height")
            fit = str(args.get("fit") or "COVER").upper()
            if fit not in FITS:
                raise ConfigError(f"must be one of {', '.join(FITS)}", field="fit")
            self.fit = fit
            self.without_enlargement = bool(args.get("withoutEnlargement", False))
            if self.width and self.height and self.width * self.height > self.max_pixels:
                raise ConfigError(
                    f"{self.width}x{self.height} is more than maxPixels ({self.max_pixels})", field="width"
                )

    def options(self, out_fmt: str) -> dict:
        """Everything that changes the output bytes; part of the stored file's name."""
        return {
            "v": ALGORITHM_VERSION,
            "op": self.code,
            "w": self.width,
            "h": self.height,
            "fit": self.fit,
            "noUp": self.without_enlargement,
            "fmt": out_fmt,
            "q": self.quality,
            "bg": self.background,
        }

    def open(self, data: bytes):
        """Open (headers only) and check the pixel count before anything is decoded.

        The maxPixels check is the guard. Pillow's own (a DecompressionBombWarning over ~89 megapixels,
        an error over ~179) only matters when maxPixels is set above it; either one, if raised, is turned
        into the same record error. We do not flip the process-wide warnings filter (or
        Image.MAX_IMAGE_PIXELS) per call: both are global state, shared with the other threads of a worker.
        """
        Image = self.Image
        try:
            im = Image.open(io.BytesIO(data), formats=_READABLE)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise self._bomb(str(exc)) from None
        except Image.UnidentifiedImageError:
            raise RecordError(f"'{self.field}' is not an image Pillow can read", retryable=False) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise RecordError(f"'{self.field}' is not a readable image: {exc}", retryable=False) from None
        w, h = im.size
        if w * h > self.max_pixels:
            raise self._bomb(f"the image is {w}x{h} ({w * h} pixels)")
        return im

    def _bomb(self, detail: str) -> RecordError:
        return RecordError(
            f"'{self.field}': {detail}, over the maxPixels limit of {self.max_pixels}; refused as a possible "
            "decompression bomb",
            retryable=False,
        )

    def output_format(self, im) -> str:
        return self.format or _PILLOW_TO_FORMAT.get(im.format or "", "png")

    def run(self, im, out_fmt: str) -> bytes:
        try:
            return self._run(im, out_fmt)
        except RecordError:
            raise
        except (self.Image.DecompressionBombError, self.Image.DecompressionBombWarning) as exc:
            raise self._bomb(str(exc)) from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise RecordError(f"'{self.field}': could not decode the image: {exc}", retryable=False) from None

    def _run(self, im, out_fmt: str) -> bytes:
        Image = self.Image
        fmt = FORMATS[out_fmt]
        icc = im.info.get("icc_profile")
        orientation = im.getexif().get(_ORIENTATION_TAG, 1) if hasattr(im, "getexif") else 1
        swapped = orientation in (5, 6, 7, 8)
        raw_w, raw_h = im.size
        oriented = (raw_h, raw_w) if swapped else (raw_w, raw_h)
        plan = plan_resize(oriented, self.width, self.height, self.fit, self.without_enlargement)
        if plan is not None and im.format in ("JPEG", "MPO"):
            # Decode at 1/2, 1/4 or 1/8 scale straight from the DCT coefficients while staying at least
            # _DRAFT_GAP times the final size: most of the speed of a big downscale, none of the blur.
            want = (
                math.ceil(oriented[0] * plan.scale[0] * _DRAFT_GAP),
                math.ceil(oriented[1] * plan.scale[1] * _DRAFT_GAP),
            )
            if want[0] < oriented[0] and want[1] < oriented[1]:
                im.draft(None, (want[1], want[0]) if swapped else want)
        self.ImageOps.exif_transpose(im, in_place=True)
        im = self._normalise_mode(im)
        if plan is not None:  # again, on the (possibly reduced and rotated) decoded size
            plan = plan_resize(im.size, self.width, self.height, self.fit, self.without_enlargement)
        if plan is not None:
            if plan.canvas is None and plan.size[0] * plan.size[1] > self.max_pixels:
                raise self._bomb(f"the result would be {plan.size[0]}x{plan.size[1]}")
            im = im.resize(plan.size, Image.Resampling.LANCZOS, box=plan.box, reducing_gap=_REDUCING_GAP)
            if plan.canvas is not None:
                im = self._letterbox(im, plan.canvas, fmt)
        im = self._for_format(im, fmt)
        out = io.BytesIO()
        params: dict[str, Any] = {}
        if fmt.quality is not None:
            params["quality"] = self.quality or fmt.quality
        if fmt.pillow == "AVIF":
            params["speed"] = _AVIF_SPEED
        elif fmt.pillow == "WEBP":
            params["method"] = 4
        if icc and fmt.pillow in ("JPEG", "PNG", "WEBP", "AVIF"):
            params["icc_profile"] = icc
        im.save(out, fmt.pillow, **params)
        return out.getvalue()

    def _normalise_mode(self, im):
        # Resampling a palette image is nearest-neighbour in Pillow and CMYK/16-bit images do not go to
        # WebP or PNG as-is: work in RGB(A) or L(A).
        if im.mode in ("RGB", "RGBA", "L", "LA"):
            if im.mode in ("RGB", "L") and "transparency" in im.info:
                return im.convert("RGBA")
            return im
        has_alpha = im.mode in ("PA", "RGBa", "La") or "transparency" in im.info
        return im.convert("RGBA" if has_alpha else "RGB")

    def _fill(self, fmt: _Format) -> tuple[int, int, int, int]:
        if self.background is not None:
            if not fmt.alpha and self.background[3] < 255:
                return (*self.background[:3], 255) if self.background[3] else (255, 255, 255, 255)
            return self.background
        return (0, 0, 0, 0) if fmt.alpha else (255, 255, 255, 255)

    def _letterbox(self, im, canvas: tuple[int, int], fmt: _Format):
        Image = self.Image
        fill = self._fill(fmt)
        opaque = fill[3] == 255 and im.mode in ("RGB", "L")
        base = Image.new("RGB" if opaque else "RGBA", canvas, fill[:3] if opaque else fill)
        at = ((canvas[0] - im.size[0]) // 2, (canvas[1] - im.size[1]) // 2)
        if opaque:
            base.paste(im.convert("RGB"), at)
        else:
            layer = im.convert("RGBA")
            base.alpha_composite(layer, at)
        return base

    def _for_format(self, im, fmt: _Format):
        Image = self.Image
        if not fmt.alpha and im.mode in ("RGBA", "LA"):
            fill = self._fill(fmt)
            flat = Image.new("RGB", im.size, fill[:3])
            rgba = im.convert("RGBA")
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        if fmt.pillow in ("WEBP", "AVIF") and im.mode in ("L", "LA"):
            return im.convert("RGBA" if im.mode == "LA" else "RGB")
        return im


def _image_operator(args: dict, ctx: OperatorContext, *, code: str, resize: bool):
    source = compile_path(args, "sourceField", required=True)
    target = compile_path(args, "targetField") or source
    job = _ImageJob(args, ctx, code=code, resize=resize)
    reader = SourceReader(args, ctx, args["sourceField"])
    writer = Writer(args, ctx, target, IMAGE_DIR)

    def apply(record: dict) -> dict:
        value = source.get(record)
        if value is MISSING or value is None or value == "":
            return record
        if not isinstance(value, str):
            raise RecordError(
                f"'{job.field}' must hold a data URI, an http(s) URL, a stored file name or base64 text, "
                f"not {type(value).__name__}",
                retryable=False,
            )
        data = reader.read(value)
        im = job.open(data)
        try:
            out_fmt = job.output_format(im)
            if writer.mode != "storage":
                encoded = job.run(im, out_fmt)
                writer.write(record, encoded, FORMATS[out_fmt].mime, None)
                return record
            name = writer.stored_name(stored_digest(data, job.options(out_fmt)), FORMATS[out_fmt].ext)
            # Records of one step run in parallel: the same image twice is made and stored once.
            with writer.lock(name):
                if not writer.already_stored(record, name):
                    writer.write(record, job.run(im, out_fmt), FORMATS[out_fmt].mime, name)
        finally:
            im.close()
        return record

    return apply


@record_operator(
    "imageResize",
    name="Resize image",
    category="file",
    description="Resize an image (data URI, URL, stored file or base64) to width x height with sharp's fits "
    "(COVER, CONTAIN, FILL, INSIDE, OUTSIDE), applying its EXIF orientation; optionally re-encode it.",
    schema=IMAGE_RESIZE_SCHEMA,
    pure=False,
    # Pillow decodes, resizes and encodes without holding the GIL: a step's images go in parallel.
    concurrency=4,
)
def image_resize(args: dict, ctx: OperatorContext):
    return _image_operator(args, ctx, code="imageResize", resize=True)


@record_operator(
    "imageConvert",
    name="Convert image",
    category="file",
    description="Re-encode an image (data URI, URL, stored file or base64) as jpeg, png, webp, avif or gif, "
    "applying its EXIF orientation.",
    schema=IMAGE_CONVERT_SCHEMA,
    pure=False,
    # Pillow decodes, resizes and encodes without holding the GIL: a step's images go in parallel.
    concurrency=4,
)
def image_convert(args: dict, ctx: OperatorContext):
    return _image_operator(args, ctx, code="imageConvert", resize=False)


