"""imageResize and imageConvert: fits, formats, EXIF orientation, sources, storage, limits."""

from __future__ import annotations

import base64
import io
import pathlib
import re
import subprocess
import sys

import pytest
from PIL import Image

from pipelines.errors import ConfigError
from pipelines.operators.base import OperatorContext
from pipelines.operators.files.images import plan_resize
from pipelines.registry import operators as operator_registry

RED, BLUE = (255, 0, 0), (0, 0, 255)


# ------------------------------------------------------------------------------------------- helpers


def image_bytes(size=(400, 200), fmt="PNG", mode="RGB", color=RED, halves=None, orientation=None, **save):
    """An image; ``halves=(left, right)`` paints the left and right halves in two colours."""
    im = Image.new(mode, size, color)
    if halves:
        left, right = halves
        im.paste(left, (0, 0, size[0] // 2, size[1]))
        im.paste(right, (size[0] // 2, 0, size[0], size[1]))
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        save["exif"] = exif.tobytes()
    out = io.BytesIO()
    im.save(out, fmt, **save)
    return out.getvalue()


def data_uri(data: bytes, mime="image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def opened(value: str) -> Image.Image:
    """The image in a data URI, checking that the URI's MIME type matches the bytes."""
    m = re.match(r"data:(image/[a-z]+);base64,(.*)$", value, re.S)
    assert m, value[:60]
    im = Image.open(io.BytesIO(base64.b64decode(m.group(2))))
    assert Image.MIME[im.format] == m.group(1)
    return im


def close(rgb, expected, tolerance=40):
    return all(abs(a - b) <= tolerance for a, b in zip(rgb[:3], expected[:3], strict=True))


class MemoryStorage:
    """The part of Django's Storage API the file operators use."""

    def __init__(self, files=None):
        self.files: dict[str, bytes] = dict(files or {})
        self.saves = 0

    def save(self, name, content):
        self.saves += 1
        self.files[name] = content.read()
        return name

    def open(self, name, mode="rb"):
        if name not in self.files:
            raise FileNotFoundError(name)
        return io.BytesIO(self.files[name])

    def exists(self, name):
        return name in self.files

    def url(self, name):
        return f"/media/{name}"


def resize(**args):
    return {"op": "imageResize", "args": {"sourceField": "img", "targetField": "out", **args}}


def convert(**args):
    return {"op": "imageConvert", "args": {"sourceField": "img", "targetField": "out", **args}}


def run_one(apply_ops, item, value, **kwargs):
    result = apply_ops([item], [{"img": value}], **kwargs)
    assert not result.failures, result.failures
    return result.records[0]["out"]


# ------------------------------------------------------------------------------------------- fits


@pytest.mark.parametrize(
    ("fit", "expected"),
    [
        ("COVER", (100, 100)),
        ("CONTAIN", (100, 100)),
        ("FILL", (100, 100)),
        ("INSIDE", (100, 50)),
        ("OUTSIDE", (200, 100)),
        ("cover", (100, 100)),
        ("inside", (100, 50)),
    ],
)
def test_it_resizes_a_400x200_image_to_100x100_with_each_fit(apply_ops, fit, expected):
    out = run_one(apply_ops, resize(width=100, height=100, fit=fit), data_uri(image_bytes()))
    im = opened(out)
    assert im.size == expected
    assert im.format == "PNG"  # no format given: the source's


def test_it_crops_the_centre_for_cover(apply_ops):
    src = data_uri(image_bytes((400, 200), halves=(RED, BLUE)))
    im = opened(run_one(apply_ops, resize(width=100, height=100, fit="COVER"), src)).convert("RGB")
    # The centre 200x200 of the source: its left half red, its right half blue (no squashing).
    assert close(im.getpixel((10, 50)), RED)
    assert close(im.getpixel((90, 50)), BLUE)


def test_it_letterboxes_contain_transparent_for_png_and_white_for_jpeg(apply_ops):
    png = opened(run_one(apply_ops, resize(width=100, height=100, fit="CONTAIN"), data_uri(image_bytes())))
    assert png.mode == "RGBA"
    assert png.getpixel((50, 5))[3] == 0  # the band above the 100x50 picture
    assert close(png.getpixel((50, 50)), RED) and png.getpixel((50, 50))[3] == 255

    jpeg_src = data_uri(image_bytes(fmt="JPEG"), "image/jpeg")
    jpg = opened(run_one(apply_ops, resize(width=100, height=100, fit="contain"), jpeg_src))
    assert jpg.format == "JPEG" and jpg.size == (100, 100)
    assert close(jpg.getpixel((50, 5)), (255, 255, 255))
    assert close(jpg.getpixel((50, 50)), RED)


def test_it_letterboxes_with_the_background_asked_for(apply_ops):
    item = resize(width=100, height=100, fit="CONTAIN", background="#00ff00", format="jpeg")
    im = opened(run_one(apply_ops, item, data_uri(image_bytes())))
    assert close(im.getpixel((50, 95)), (0, 255, 0))


def test_it_stretches_for_fill(apply_ops):
    src = data_uri(image_bytes((400, 200), halves=(RED, BLUE)))
    im = opened(run_one(apply_ops, resize(width=100, height=100, fit="FILL"), src)).convert("RGB")
    assert close(im.getpixel((10, 50)), RED) and close(im.getpixel((90, 50)), BLUE)


def test_it_keeps_the_aspect_ratio_with_only_a_width_or_a_height(apply_ops):
    src = data_uri(image_bytes((400, 200)))
    assert opened(run_one(apply_ops, resize(width=100), src)).size == (100, 50)
    assert opened(run_one(apply_ops, resize(height=50), src)).size == (100, 50)


def test_it_does_not_enlarge_when_asked_not_to(apply_ops):
    src = data_uri(image_bytes((50, 40)))
    assert opened(run_one(apply_ops, resize(width=100, height=100, fit="INSIDE"), src)).size == (100, 80)
    item = resize(width=100, height=100, fit="INSIDE", withoutEnlargement=True)
    assert opened(run_one(apply_ops, item, src)).size == (50, 40)
    item = resize(width=100, height=30, fit="COVER", withoutEnlargement=True)
    assert opened(run_one(apply_ops, item, src)).size == (50, 30)


def test_it_plans_sharp_geometry_for_odd_sizes():
    assert plan_resize((3000, 2000), 800, 600, "COVER").size == (800, 600)
    assert plan_resize((3000, 2000), 800, 600, "INSIDE").size == (800, 533)
    assert plan_resize((3000, 2000), 800, 600, "OUTSIDE").size == (900, 600)
    contain = plan_resize((3000, 2000), 800, 600, "CONTAIN")
    assert contain.size == (800, 533) and contain.canvas == (800, 600)
    assert plan_resize((3000, 2000), None, None, "COVER") is None


# ------------------------------------------------------------------------------------------- JPEG, EXIF


def test_it_shrinks_a_big_jpeg_exactly_to_size(apply_ops):
    src = data_uri(image_bytes((4000, 3000), fmt="JPEG", halves=(RED, BLUE), quality=70), "image/jpeg")
    for fit, size in [("COVER", (800, 600)), ("CONTAIN", (800, 600)), ("INSIDE", (800, 600)),
                      ("FILL", (640, 640)), ("OUTSIDE", (800, 600))]:
        w, h = size
        im = opened(run_one(apply_ops, resize(width=w, height=h, fit=fit, format="webp"), src))
        assert (im.format, im.size) == ("WEBP", size), fit
        rgb = im.convert("RGB")
        assert close(rgb.getpixel((5, h // 2)), RED) and close(rgb.getpixel((w - 5, h // 2)), BLUE)


def test_it_applies_the_exif_orientation(apply_ops):
    # Orientation 6: the camera was turned; the stored 60x40 picture is shown rotated 90° clockwise,
    # 40 wide and 60 high, with the stored left half (red) on top.
    raw = image_bytes((60, 40), fmt="JPEG", halves=(RED, BLUE), orientation=6, quality=95)
    im = opened(run_one(apply_ops, convert(format="png"), data_uri(raw, "image/jpeg"))).convert("RGB")
    assert im.size == (40, 60)
    assert close(im.getpixel((20, 5)), RED) and close(im.getpixel((20, 55)), BLUE)
    assert 0x0112 not in im.getexif()

    resized = opened(run_one(apply_ops, resize(width=20), data_uri(raw, "image/jpeg")))
    assert resized.size == (20, 30)


def test_it_applies_the_orientation_of_a_big_jpeg_decoded_at_reduced_size(apply_ops):
    raw = image_bytes((3000, 2000), fmt="JPEG", halves=(RED, BLUE), orientation=6, quality=70)
    im = opened(run_one(apply_ops, resize(width=200, height=300, fit="FILL", format="png"),
                        data_uri(raw, "image/jpeg"))).convert("RGB")
    assert im.size == (200, 300)
    assert close(im.getpixel((100, 10)), RED) and close(im.getpixel((100, 290)), BLUE)


# ------------------------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("fmt", "pillow", "mime"),
    [
        ("jpeg", "JPEG", "image/jpeg"),
        ("jpg", "JPEG", "image/jpeg"),
        ("png", "PNG", "image/png"),
        ("webp", "WEBP", "image/webp"),
        ("avif", "AVIF", "image/avif"),
        ("gif", "GIF", "image/gif"),
    ],
)
def test_it_converts_to_each_format(apply_ops, fmt, pillow, mime):
    out = run_one(apply_ops, convert(format=fmt), data_uri(image_bytes((64, 48), mode="RGBA",
                                                                         color=(0, 0, 255, 255))))
    assert out.startswith(f"data:{mime};base64,")
    im = opened(out)
    assert (im.format, im.size) == (pillow, (64, 48))
    assert close(im.convert("RGB").getpixel((32, 24)), BLUE)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_it_resizes_into_each_lossy_format_with_its_quality(apply_ops, fmt):
    src = Image.effect_noise((300, 300), 60).convert("RGB")
    buf = io.BytesIO()
    src.save(buf, "PNG")
    sizes = []
    for quality in (20, 95):
        out = run_one(apply_ops, resize(width=200, height=100, format=fmt, quality=quality),
                      data_uri(buf.getvalue()))
        im = opened(out)
        assert (im.format.lower(), im.size) == (fmt, (200, 100))
        sizes.append(len(base64.b64decode(out.split(",", 1)[1])))
    assert sizes[0] < sizes[1]


def test_it_flattens_transparency_onto_white_for_jpeg(apply_ops):
    src = data_uri(image_bytes((20, 20), mode="RGBA", color=(0, 0, 0, 0)))
    im = opened(run_one(apply_ops, convert(format="jpeg"), src))
    assert im.mode == "RGB" and close(im.getpixel((10, 10)), (255, 255, 255))


# ------------------------------------------------------------------------------------------- sources


def test_it_reads_plain_base64_like_the_plugin(apply_ops):
    raw = base64.b64encode(image_bytes((40, 20))).decode()
    assert opened(run_one(apply_ops, resize(width=20, format="webp"), raw)).size == (20, 10)


def test_it_reads_line_wrapped_and_url_safe_base64(apply_ops):
    raw = image_bytes((40, 20), fmt="WEBP")
    wrapped = base64.encodebytes(raw).decode()  # 76-character lines
    url_safe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    for value in (wrapped, url_safe, data_uri(raw, "image/webp").replace("base64,", "base64,\n")):
        assert opened(run_one(apply_ops, resize(width=20), value)).size == (20, 10)


def test_it_writes_bare_base64_when_asked(apply_ops):
    out = run_one(apply_ops, resize(width=20, output="base64"), data_uri(image_bytes((40, 20))))
    assert Image.open(io.BytesIO(base64.b64decode(out))).size == (20, 10)


def test_it_leaves_a_record_without_a_source_unchanged(apply_ops):
    result = apply_ops([resize(width=10)], [{"a": 1}, {"img": None}, {"img": ""}])
    assert result.records == [{"a": 1}, {"img": None}, {"img": ""}]
    assert not result.failures


def test_it_defaults_the_target_to_the_source_field(apply_ops):
    result = apply_ops([{"op": "imageResize", "args": {"sourceField": "p.img", "width": 10}}],
                       [{"p": {"img": data_uri(image_bytes((40, 20)))}}])
    assert opened(result.records[0]["p"]["img"]).size == (10, 5)


def test_it_reports_garbage_as_a_record_error_and_goes_on(apply_ops):
    good = data_uri(image_bytes((40, 20)))
    records = [
        {"img": data_uri(b"this is not an image at all")},
        {"img": "%%% not base64 %%%"},
        {"img": 42},
        {"img": good},
    ]
    result = apply_ops([resize(width=10)], records)
    messages = [f.message for f in result.failures]
    assert len(messages) == 3
    assert "'img' is not an image" in messages[0]
    assert "'img' holds neither" in messages[1]
    assert "not int" in messages[2]
    assert all(not f.retryable for f in result.failures)
    assert [f.record for f in result.failures] == records[:3]  # what entered, for a replay
    assert opened(result.records[0]["out"]).size == (10, 5)


def test_it_refuses_a_decompression_bomb_as_a_record_error(apply_ops):
    records = [{"img": data_uri(image_bytes((200, 100)))}, {"img": data_uri(image_bytes((20, 10)))}]
    result = apply_ops([resize(width=10, maxPixels=1000)], records)
    assert len(result.failures) == 1
    message = result.failures[0].message
    assert "'img'" in message and "200x100" in message and "decompression bomb" in message
    assert len(result.records) == 1


def test_it_refuses_a_source_over_max_source_bytes(apply_ops):
    result = apply_ops([resize(width=10, maxSourceBytes=100)], [{"img": data_uri(image_bytes((300, 300)))}])
    assert "maxSourceBytes" in result.failures[0].message


# ------------------------------------------------------------------------------------------- storage


def test_it_stores_the_result_once_and_a_rerun_does_no_work(apply_ops):
    storage = MemoryStorage()
    ctx = {"context_for": lambda i: OperatorContext(op_index=i, storage=storage)}
    src = data_uri(image_bytes((400, 300)))
    item = resize(width=80, height=60, format="webp", urlField="outUrl")

    first = apply_ops([item], [{"img": src}, {"img": src}], **ctx)
    name = first.records[0]["out"]
    assert re.fullmatch(r"datahub/images/[0-9a-f]{32}\.webp", name)
    assert first.records[1]["out"] == name
    assert first.records[0]["outUrl"] == f"/media/{name}"
    assert storage.saves == 1  # the second record had the same bytes and options
    im = Image.open(io.BytesIO(storage.files[name]))
    assert (im.format, im.size) == ("WEBP", (80, 60))

    again = apply_ops([item], [{"img": src}], **ctx)
    assert again.records[0]["out"] == name and storage.saves == 1

    other = apply_ops([resize(width=40, height=30, format="webp")], [{"img": src}], **ctx)
    assert other.records[0]["out"] != name and storage.saves == 2


def test_it_returns_a_data_uri_when_asked_even_with_a_storage(apply_ops):
    storage = MemoryStorage()
    out = run_one(apply_ops, resize(width=10, output="dataUri"), data_uri(image_bytes((40, 20))),
                  context_for=lambda i: OperatorContext(op_index=i, storage=storage))
    assert out.startswith("data:image/png;base64,") and storage.saves == 0


def test_it_reads_a_source_from_storage_and_reports_a_missing_one(apply_ops):
    storage = MemoryStorage({"uploads/photo.jpg": image_bytes((400, 200), fmt="JPEG")})
    ctx = {"context_for": lambda i: OperatorContext(op_index=i, storage=storage)}
    result = apply_ops([resize(width=100, height=100, fit="INSIDE")],
                       [{"img": "uploads/photo.jpg"}, {"img": "uploads/gone.jpg"}], **ctx)
    name = result.records[0]["out"]
    assert name.endswith(".jpg")
    assert Image.open(io.BytesIO(storage.files[name])).size == (100, 50)
    assert len(result.failures) == 1
    assert result.failures[0].message == "'img': stored file 'uploads/gone.jpg' does not exist"


def test_it_does_not_write_to_storage_in_a_dry_run(apply_ops):
    storage = MemoryStorage()
    out = run_one(apply_ops, resize(width=10), data_uri(image_bytes((40, 20))),
                  context_for=lambda i: OperatorContext(op_index=i, storage=storage, dry_run=True))
    assert out.startswith("datahub/images/") and storage.saves == 0


# ------------------------------------------------------------------------------------------- URLs


def test_it_fetches_a_url_through_the_guarded_client(apply_ops, httpserver):
    from pipelines.http import HttpClient, HttpPolicy

    httpserver.expect_request("/photo.jpg").respond_with_data(
        image_bytes((400, 200), fmt="JPEG"), content_type="image/jpeg")
    httpserver.expect_request("/missing.jpg").respond_with_data("nope", status=404)
    client = HttpClient(HttpPolicy(allow=("127.0.0.1",)))
    ctx = {"context_for": lambda i: OperatorContext(op_index=i, http=client)}
    result = apply_ops([resize(width=100, height=100, fit="COVER", format="avif")],
                       [{"img": httpserver.url_for("/photo.jpg")}, {"img": httpserver.url_for("/missing.jpg")}],
                       **ctx)
    im = opened(result.records[0]["out"])
    assert (im.format, im.size) == ("AVIF", (100, 100))
    assert len(result.failures) == 1
    message = result.failures[0].message
    assert "'img'" in message and "404" in message and "/missing.jpg" in message
    assert not result.failures[0].retryable


def test_it_refuses_a_private_address_the_policy_does_not_allow(apply_ops, httpserver):
    from pipelines.http import HttpClient

    httpserver.expect_request("/photo.jpg").respond_with_data(image_bytes(fmt="JPEG"))
    result = apply_ops([resize(width=10)], [{"img": httpserver.url_for("/photo.jpg")}],
                       context_for=lambda i: OperatorContext(op_index=i, http=HttpClient()))
    assert len(result.failures) == 1 and "could not fetch" in result.failures[0].message
    assert not httpserver.log


def test_it_reports_a_url_when_outbound_http_is_off(apply_ops):
    result = apply_ops([resize(width=10)], [{"img": "https://example.com/a.png"}])
    assert "outbound HTTP is not available" in result.failures[0].message


# ------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (resize(width=10, fit="STRETCH"), "fit"),
        (resize(width=0), "width"),
        (resize(width=10, format="bmp"), "format"),
        (resize(width=10, quality=101), "quality"),
        (resize(width=10, background="not-a-colour"), "background"),
        (resize(width=10, output="storage"), "output"),  # no storage in this context
        (resize(width=10000, height=10000), "width"),  # more than maxPixels
        (resize(width=10, widht=5), ""),
        ({"op": "imageConvert", "args": {"sourceField": "img"}}, ""),
        ({"op": "imageResize", "args": {"width": 10}}, ""),
    ],
)
def test_it_refuses_impossible_args_when_the_step_is_compiled(apply_ops, item, field):
    with pytest.raises(ConfigError) as caught:
        apply_ops([item], [])
    assert caught.value.field.startswith("operators[0].args")
    assert caught.value.field.endswith(field)


def test_it_registers_file_operators_with_complete_schemas():
    for code in ("imageResize", "imageConvert"):
        entry = operator_registry.get(code)
        assert entry.category == "file"
        assert entry.schema["additionalProperties"] is False
        for name, prop in entry.schema["properties"].items():
            assert prop.get("type") and prop.get("description"), (code, name)
    assert operator_registry.get("imageConvert").schema["required"] == ["sourceField", "format"]
    fits = operator_registry.get("imageResize").schema["properties"]["fit"]
    assert {"COVER", "CONTAIN", "FILL", "INSIDE", "OUTSIDE", "cover"} <= set(fits["enum"])
    formats = operator_registry.get("imageConvert").schema["properties"]["format"]["enum"]
    assert {"jpeg", "png", "webp", "avif", "gif"} <= set(formats)


def test_it_imports_neither_pillow_weasyprint_nor_django_until_used():
    code = (
        "import sys, pipelines.operators.files; "
        "bad = [m for m in ('PIL.Image', 'weasyprint', 'django.db') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = pathlib.Path(__file__).resolve().parents[3]
    env = {"PATH": "/usr/bin:/bin"}  # no DJANGO_SETTINGS_MODULE
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
