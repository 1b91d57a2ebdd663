"""File operators: ``imageResize``, ``imageConvert`` (Pillow) and ``pdfGenerate`` (WeasyPrint). [pure]

Pillow and WeasyPrint are imported inside the factories, so importing the operator catalogue stays cheap
and a worker that never renders a PDF never loads Pango.

Where a source image comes from (``sourceField`` holds a string; a missing, null or empty source leaves
the record unchanged, as in the plugin):

* ``data:image/png;base64,...``: a data URI;
* ``http://`` / ``https://``: fetched with ``ctx.http`` (the SSRF-guarded, size-capped client); without
  one, a URL is a record error;
* a name in ``ctx.storage`` (a Django storage: ``open``/``save``/``exists``/``url``);
* otherwise plain base64, the plugin's form.

Where the result goes (``output``): ``storage`` (the default when the run has a storage) saves the file
under a name derived from a hash of the input bytes and the options and writes that name into
``targetField``; the same input with the same options maps to the same name, and an existing name is not
produced again, so a re-run does no work. ``dataUri`` and ``base64`` (the plugin's output) write the
file into the record.

Bad input is a *record* error (:class:`RecordError`, the rest of the batch goes on): a non-image, an image
over ``maxPixels`` (the decompression-bomb guard), a source over ``maxSourceBytes``, an HTTP error such as
404, a storage name that does not exist. A config that cannot work is a :class:`ConfigError` when the
step is compiled.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import io
import logging
import math
import re
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelines.errors import ConfigError, RecordError
from pipelines.http_policy import is_retryable_status
from pipelines.operators.base import OperatorContext, record_operator
from pipelines.records import MISSING, Path, PathError, dumps

IMAGE_DIR = "datahub/images/"
PDF_DIR = "datahub/pdfs/"
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_SOURCE_BYTES = 25 * 1024 * 1024
# Bumped when the same options would produce different bytes (a new resampling, say), so stored files
# made by an older version are not mistaken for the new result.
_ALGORITHM_VERSION = 2  # 2: JPEGs decoded at the smallest DCT scale still at least the target size
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
OUTPUTS = ("storage", "dataUri", "base64")

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
    "output": {
        "type": "string",
        "enum": list(OUTPUTS),
        "description": "storage: save the file in the run's storage and write its name; dataUri: write a data "
        "URI; base64: write bare base64 (the plugin's form). Default: storage when the run has one, "
        "otherwise dataUri.",
    },
    "urlField": {
        "type": "string",
        "description": "With output 'storage', also write the file's public URL (storage.url) into this field.",
    },
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

PAGE_SIZES = ("A4", "LETTER", "A3")
ORIENTATIONS = ("PORTRAIT", "LANDSCAPE")
_CSS_LENGTH = re.compile(r"^(0|\d+(\.\d+)?(mm|cm|in|pt|px|pc))$")

PDF_GENERATE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "template": {
            "type": "string",
            "description": "HTML template. {{a.b}} inserts a record value, HTML-escaped (missing: empty). "
            "{{#each items}}...{{/each}} repeats its body for each element of a list field; inside, "
            "{{this}} is the element, {{this.x}} or {{x}} a field of it (a name the element lacks is "
            "looked up in the enclosing record), {{@index}} its 0-based position. Blocks nest.",
        },
        "templateField": {
            "type": "string",
            "description": "Field holding the HTML template, used when 'template' is not given. A record whose "
            "template is empty passes unchanged.",
        },
        "targetField": {
            "type": "string",
            "description": "Field that receives the PDF (a storage name or a data URI).",
        },
        "pageSize": {
            "type": "string",
            "enum": list(PAGE_SIZES),
            "default": "A4",
            "description": "Page size.",
        },
        "orientation": {
            "type": "string",
            "enum": list(ORIENTATIONS),
            "default": "PORTRAIT",
            "description": "Page orientation.",
        },
        "margins": {
            "type": "string",
            "default": "50pt",
            "description": "Page margins as a CSS length list (1 to 4 values in mm, cm, in, pt, px or pc), "
            "e.g. '20mm' or '15mm 10mm'.",
        },
        "css": {
            "type": "string",
            "description": "Extra CSS applied after the page setup (it may override @page).",
        },
        "output": _COMMON_IMAGE_PROPS["output"],
        "urlField": _COMMON_IMAGE_PROPS["urlField"],
    },
    "required": ["targetField"],
    "additionalProperties": False,
}

# --------------------------------------------------------------------------------------------- helpers


def _compile_path(args: dict, key: str, *, required: bool = False) -> Path | None:
    text = args.get(key)
    if text is None or text == "":
        if required:
            raise ConfigError(f"'{key}' is required", field=key)
        return None
    try:
        return Path(text)
    except PathError as exc:
        raise ConfigError(str(exc), field=key) from None


def _output_mode(args: dict, ctx: OperatorContext) -> str:
    output = args.get("output") or ("storage" if ctx.storage is not None else "dataUri")
    if output not in OUTPUTS:
        raise ConfigError(f"must be one of {', '.join(OUTPUTS)}", field="output")
    if output == "storage" and ctx.storage is None:
        raise ConfigError("output 'storage' needs a file storage and this run has none", field="output")
    return output


def _positive_int(args: dict, key: str, default: int) -> int:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError("must be a positive integer", field=key)
    return value


def _digest(payload: bytes, options: dict) -> str:
    h = hashlib.sha256()
    h.update(dumps(options))
    h.update(b"\0")
    h.update(payload)
    return h.hexdigest()[:32]


class _Writer:
    """Writes a produced file into a record: into storage (once per name) or as a data URI / base64."""

    def __init__(self, args: dict, ctx: OperatorContext, target: Path, directory: str):
        self.mode = _output_mode(args, ctx)
        self.storage = ctx.storage
        self.target = target
        self.url_field = _compile_path(args, "urlField")
        self.directory = directory
        self.dry_run = ctx.dry_run
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def lock(self, name: str) -> threading.Lock:
        """One lock per stored name, so parallel records never make the same file twice."""
        with self._locks_lock:
            return self._locks.setdefault(name, threading.Lock())

    def stored_name(self, digest: str, ext: str) -> str:
        return f"{self.directory}{digest}.{ext}"

    def already_stored(self, record: dict, name: str) -> bool:
        """Write ``name`` and return True when the storage already has it (a re-run: no work to do)."""
        if self.mode != "storage" or not self.storage.exists(name):
            return False
        self._write_name(record, name)
        return True

    def write(self, record: dict, data: bytes, mime: str, name: str | None) -> None:
        if self.mode == "storage":
            if not self.dry_run:
                # Two workers may race to the same name; a Django storage then stores the second copy under
                # a suffixed name. Both hold the same bytes, and each record gets the name actually saved.
                name = self.storage.save(name, io.BytesIO(data))
            self._write_name(record, name)
        elif self.mode == "dataUri":
            self.target.set(record, f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}")
        else:
            self.target.set(record, base64.b64encode(data).decode("ascii"))

    def _write_name(self, record: dict, name: str) -> None:
        self.target.set(record, name)
        if self.url_field is not None:
            try:
                self.url_field.set(record, self.storage.url(name))
            except NotImplementedError:
                pass  # a storage without public URLs: the name is all there is


# --------------------------------------------------------------------------------------------- sources


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)


def _decode_base64(text: str, field: str, limit: int) -> bytes:
    if len(text) * 3 // 4 > limit:
        raise RecordError(
            f"'{field}': the image is larger than maxSourceBytes ({limit} bytes)", retryable=False
        )
    try:  # the common case first: one strict pass in C (a regex pass over megabytes costs more than the decode)
        return base64.b64decode(_padded(text), validate=True)
    except (binascii.Error, ValueError):
        pass
    compact = "".join(text.split())  # line-wrapped base64 (MIME style)
    try:
        if "-" in compact or "_" in compact:
            return base64.b64decode(_padded(compact), altchars=b"-_", validate=True)
        return base64.b64decode(_padded(compact), validate=True)
    except (binascii.Error, ValueError):
        raise RecordError(
            f"'{field}' holds neither a data URI, an http(s) URL, a stored file name nor base64 data",
            retryable=False,
        ) from None


def _decode_data_uri(text: str, field: str, limit: int) -> bytes:
    comma = text.find(",")
    if comma < 0:
        raise RecordError(f"'{field}' holds a malformed data URI (no comma)", retryable=False)
    header, payload = text[5:comma], text[comma + 1 :]
    if header.lower().endswith(";base64"):
        return _decode_base64(payload, field, limit)
    data = urllib.parse.unquote_to_bytes(payload)
    if len(data) > limit:
        raise RecordError(
            f"'{field}': the image is larger than maxSourceBytes ({limit} bytes)", retryable=False
        )
    return data


class _SourceReader:
    """Turns a source field's string into bytes (see the module docstring for the accepted forms)."""

    def __init__(self, args: dict, ctx: OperatorContext, field: str):
        self.http = ctx.http
        self.storage = ctx.storage
        self.field = field
        self.limit = _positive_int(args, "maxSourceBytes", DEFAULT_MAX_SOURCE_BYTES)
        timeout_ms = args.get("timeoutMs")
        self.timeout = timeout_ms / 1000 if timeout_ms else None

    def read(self, value: str) -> bytes:
        lowered = value[:8].lower()
        if lowered.startswith("data:"):
            data = _decode_data_uri(value, self.field, self.limit)
        elif lowered.startswith(("http://", "https://")):
            data = self._fetch(value)
        elif self.storage is not None and len(value) <= 1024 and self._stored(value):
            data = self._open(value)
        elif self.storage is not None and "." in value[-10:]:
            # Base64 has no '.', so 'uploads/photo.jpg' is a file name, and that file is not there.
            raise RecordError(f"'{self.field}': stored file '{value}' does not exist", retryable=False)
        else:
            data = _decode_base64(value, self.field, self.limit)
        if not data:
            raise RecordError(f"'{self.field}': the source is empty", retryable=False)
        return data

    def _fetch(self, url: str) -> bytes:
        if self.http is None:
            raise RecordError(
                f"'{self.field}': {url} is a URL and outbound HTTP is not available", retryable=False
            )
        try:
            response = self.http.request("GET", url, timeout=self.timeout)
        except Exception as exc:  # pipelines.http.HttpError: refused target, timeout, size cap, network
            raise RecordError(
                f"'{self.field}': could not fetch {url}: {exc}", retryable=getattr(exc, "retryable", True)
            ) from exc
        status = getattr(response, "status", 200)
        if status >= 400:
            raise RecordError(
                f"'{self.field}': GET {url} answered HTTP {status}"
                + (" (not found)" if status == 404 else ""),
                retryable=is_retryable_status(status),
            )
        body = response.body or b""
        if len(body) > self.limit:
            raise RecordError(
                f"'{self.field}': {url} is larger than maxSourceBytes ({self.limit} bytes)", retryable=False
            )
        return body

    def _stored(self, name: str) -> bool:
        try:
            return bool(self.storage.exists(name))
        except Exception:  # a name the storage refuses (SuspiciousFileOperation, bad characters)
            return False

    def _open(self, name: str) -> bytes:
        try:
            with self.storage.open(name, "rb") as fh:
                data = fh.read(self.limit + 1)
        except OSError as exc:
            raise RecordError(f"'{self.field}': could not read stored file '{name}': {exc}") from exc
        if len(data) > self.limit:
            raise RecordError(
                f"'{self.field}': stored file '{name}' is larger than maxSourceBytes ({self.limit} bytes)",
                retryable=False,
            )
        return data


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
        self.max_pixels = _positive_int(args, "maxPixels", DEFAULT_MAX_PIXELS)
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
            "v": _ALGORITHM_VERSION,
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
    source = _compile_path(args, "sourceField", required=True)
    target = _compile_path(args, "targetField") or source
    job = _ImageJob(args, ctx, code=code, resize=resize)
    reader = _SourceReader(args, ctx, args["sourceField"])
    writer = _Writer(args, ctx, target, IMAGE_DIR)

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
            name = writer.stored_name(_digest(data, job.options(out_fmt)), FORMATS[out_fmt].ext)
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


# --------------------------------------------------------------------------------------------- templates

_TAG = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.DOTALL)


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class _Var:
    name: str
    path: Path | None  # None for 'this' and '@index'


@dataclass(frozen=True)
class _Each:
    path: Path
    body: tuple


def _var(expr: str) -> _Var:
    if expr in ("this", "@index"):
        return _Var(expr, None)
    name = expr[5:] if expr.startswith("this.") else expr
    try:
        return _Var(expr, Path(name))
    except PathError as exc:
        raise TemplateError(f"'{{{{{expr}}}}}': {exc}") from None


class Template:
    """The plugin's ``{{a.b}}`` placeholders plus ``{{#each list}}...{{/each}}``; values are HTML-escaped."""

    def __init__(self, text: str):
        self.text = text
        stack: list[tuple[str, list]] = [("", [])]
        pos = 0
        for m in _TAG.finditer(text):
            if m.start() > pos:
                stack[-1][1].append(text[pos : m.start()])
            pos = m.end()
            expr = m.group(1)
            if expr.startswith("#each"):
                target = expr[5:].strip()
                if not target or not expr[5:6].isspace():
                    raise TemplateError(f"'{{{{{expr}}}}}' needs a list field, as in {{{{#each items}}}}")
                stack.append((target, []))
            elif expr == "/each":
                if len(stack) == 1:
                    raise TemplateError("'{{/each}}' without a matching '{{#each ...}}'")
                target, body = stack.pop()
                try:
                    each = _Each(Path(target[5:] if target.startswith("this.") else target), tuple(body))
                except PathError as exc:
                    raise TemplateError(f"'{{{{#each {target}}}}}': {exc}") from None
                stack[-1][1].append(each)
            elif expr[:1] in ("#", "/", ">", "!", "{"):
                raise TemplateError(
                    f"'{{{{{expr}}}}}' is not supported: use {{{{field}}}} or {{{{#each list}}}}"
                )
            elif not expr:
                raise TemplateError("'{{}}' names no field")
            else:
                stack[-1][1].append(_var(expr))
        if len(stack) > 1:
            raise TemplateError(f"'{{{{#each {stack[-1][0]}}}}}' is never closed with '{{{{/each}}}}'")
        if pos < len(text):
            stack[0][1].append(text[pos:])
        self.nodes = tuple(stack[0][1])

    def render(self, record: Any) -> str:
        out: list[str] = []
        self._render(self.nodes, [(record, None)], out)
        return "".join(out)

    def _render(self, nodes: tuple, scopes: list, out: list[str]) -> None:
        for node in nodes:
            if type(node) is str:
                out.append(node)
            elif type(node) is _Var:
                out.append(html.escape(_text(self._lookup(node, scopes)), quote=True))
            else:
                items = self._resolve(node.path, scopes)
                if type(items) is not list:
                    continue
                for index, item in enumerate(items):
                    scopes.append((item, index))
                    self._render(node.body, scopes, out)
                    scopes.pop()

    def _lookup(self, var: _Var, scopes: list) -> Any:
        item, index = scopes[-1]
        if var.name == "this":
            return item
        if var.name == "@index":
            return index
        if var.name.startswith("this."):
            return var.path.get(item)
        return self._resolve(var.path, scopes)

    @staticmethod
    def _resolve(path: Path, scopes: list) -> Any:
        # Innermost scope first, then outwards: inside {{#each lines}}, {{sku}} is the line's and
        # {{currency}} (which a line lacks) the record's.
        for item, _ in reversed(scopes):
            value = path.get(item)
            if value is not MISSING:
                return value
        return MISSING


def _text(value: Any) -> str:
    """A value as the plugin's String(value) would show it (missing and null: empty)."""
    if value is MISSING or value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is float and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if type(value) in (dict, list):
        return dumps(value).decode()
    return str(value)


# --------------------------------------------------------------------------------------------- PDF


def _refusing_fetcher(on_refused: Callable[[str], None] | None = None):
    """A WeasyPrint URL fetcher that serves data: URIs and refuses everything else.

    A template (or a record value, or the css arg) must not make the worker read local files
    (file:///etc/passwd) or call the network, internal addresses included. WeasyPrint treats the refusal
    like a broken link: the resource is left out and the document still renders.
    """
    from weasyprint.urls import URLFetcher

    class DataOnlyFetcher(URLFetcher):
        def __init__(self):
            super().__init__(allowed_protocols=("data",), allow_redirects=False, fail_on_errors=False)

        def fetch(self, url, headers=None):
            if not url[:5].lower() == "data:":
                if on_refused is not None:
                    on_refused(url)
                raise ValueError(f"refused to fetch {url[:200]}: a PDF template may only embed data: URIs")
            return super().fetch(url, headers)

    return DataOnlyFetcher()


class _WeasyPrintToStep(logging.Handler):
    """WeasyPrint's messages (CSS it ignored, a font it lacks) belong to the step rendering in this thread:
    they become that step's warnings, shown with the run, instead of lines on the worker's or the CLI's
    stderr. Its progress lines ("Step 4 - Creating formatting structure") tell a person nothing and are
    dropped. A message logged outside a render (none is expected) goes to the ``datahub.pdf`` logger."""

    sink = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING:
            return
        warn = getattr(self.sink, "warn", None)
        message = f"pdfGenerate: {record.getMessage()}"
        if warn is not None:
            warn(message)
        else:
            logging.getLogger("datahub.pdf").warning(message)


_WEASYPRINT_LOG = logging.getLogger("weasyprint")  # its progress logger is a child and propagates to it
_WEASYPRINT_LOG.addHandler(_WeasyPrintToStep())
_WEASYPRINT_LOG.propagate = False


class _messages_to:
    """While rendering: WeasyPrint's warnings of this thread go to ``warn``."""

    def __init__(self, warn: Callable[[str], None]):
        self.warn = warn

    def __enter__(self) -> None:
        _WeasyPrintToStep.sink.warn = self.warn

    def __exit__(self, *exc: object) -> None:
        _WeasyPrintToStep.sink.warn = None


def page_css(page_size: str = "A4", orientation: str = "PORTRAIT", margins: str = "50pt") -> str:
    return f"@page {{ size: {page_size} {orientation.lower()}; margin: {margins}; }}"


def render_document(
    html_text: str,
    *,
    page_size: str = "A4",
    orientation: str = "PORTRAIT",
    margins: str = "50pt",
    css: str | None = None,
    on_refused: Callable[[str], None] | None = None,
):
    """The WeasyPrint document (``.pages``, ``.write_pdf()``) of ``html_text``, fetching only data: URIs."""
    from weasyprint import CSS, HTML

    fetcher = _refusing_fetcher(on_refused)
    sheets = [CSS(string=page_css(page_size, orientation, margins), url_fetcher=fetcher)]
    if css:
        sheets.append(CSS(string=css, url_fetcher=fetcher))
    return HTML(string=html_text, url_fetcher=fetcher).render(stylesheets=sheets)


def _parse_margins(value: Any) -> str:
    if value is None:
        return "50pt"
    parts = str(value).split() if isinstance(value, str) else []
    if not 1 <= len(parts) <= 4 or not all(_CSS_LENGTH.match(p) for p in parts):
        raise ConfigError("must be 1 to 4 CSS lengths such as '20mm' or '15mm 10mm'", field="margins")
    return " ".join(parts)


@record_operator(
    "pdfGenerate",
    name="Generate PDF",
    category="file",
    description="Render an HTML template with {{field}} placeholders (values HTML-escaped) and "
    "{{#each list}} loops to a PDF with WeasyPrint; the template cannot fetch files or network resources.",
    schema=PDF_GENERATE_SCHEMA,
    pure=False,
)
def pdf_generate(args: dict, ctx: OperatorContext):
    target = _compile_path(args, "targetField", required=True)
    template_field = _compile_path(args, "templateField")
    inline = args.get("template")
    if inline is not None and not isinstance(inline, str):
        raise ConfigError("must be a string", field="template")
    if not inline and template_field is None:
        raise ConfigError("give 'template' (HTML) or 'templateField'", field="template")
    compiled = None
    if inline:
        try:
            compiled = Template(inline)
        except TemplateError as exc:
            raise ConfigError(str(exc), field="template") from None
    page_size = str(args.get("pageSize") or "A4").upper()
    if page_size not in PAGE_SIZES:
        raise ConfigError(f"must be one of {', '.join(PAGE_SIZES)}", field="pageSize")
    orientation = str(args.get("orientation") or "PORTRAIT").upper()
    if orientation not in ORIENTATIONS:
        raise ConfigError(f"must be one of {', '.join(ORIENTATIONS)}", field="orientation")
    margins = _parse_margins(args.get("margins"))
    css = args.get("css") or None
    writer = _Writer(args, ctx, target, PDF_DIR)
    import weasyprint  # noqa: F401  (load Pango once, at compile time, and fail early if it is missing)

    cache: OrderedDict[str, Template] = OrderedDict()  # templates from records, parsed once each
    refused: set[str] = set()

    def note_refused(url: str) -> None:
        if url not in refused and len(refused) < 20:
            refused.add(url)
            ctx.warn(f"pdfGenerate: refused to fetch {url[:200]} (only data: URIs may be embedded)")

    def template_for(record: dict) -> Template | None:
        if compiled is not None:
            return compiled
        raw = template_field.get(record)
        if raw is MISSING or raw is None or raw == "":
            return None
        text = raw if isinstance(raw, str) else _text(raw)
        hit = cache.get(text)
        if hit is None:
            try:
                hit = Template(text)
            except TemplateError as exc:
                raise RecordError(f"'{template_field.text}': {exc}", retryable=False) from None
            cache[text] = hit
            if len(cache) > 32:
                cache.popitem(last=False)
        return hit

    def apply(record: dict) -> dict:
        template = template_for(record)
        if template is None:
            return record
        html_text = template.render(record)
        name = None
        if writer.mode == "storage":
            digest = _digest(
                html_text.encode(),
                {
                    "v": _ALGORITHM_VERSION,
                    "page": page_size,
                    "o": orientation,
                    "m": margins,
                    "css": css,
                },
            )
            name = writer.stored_name(digest, "pdf")
            if writer.already_stored(record, name):
                return record
        with _messages_to(ctx.warn):
            document = render_document(
                html_text,
                page_size=page_size,
                orientation=orientation,
                margins=margins,
                css=css,
                on_refused=note_refused,
            )
            pdf = document.write_pdf()
        writer.write(record, pdf, "application/pdf", name)
        return record

    return apply
