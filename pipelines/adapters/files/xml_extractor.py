"""The ``xml`` extractor (through defusedxml)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import IO, Any

from pipelines.adapters.files.extractor import FileExtractor, source_properties
from pipelines.adapters.files.sources import Source
from pipelines.errors import ConfigError, StepError
from pipelines.records import Batch, Record
from pipelines.registry import extractors

# --- xml --------------------------------------------------------------------------------------------------


@extractors.register(
    "xml",
    name="XML file",
    category="file",
    builtin=True,
    description="Records from the elements at recordPath of an XML document, streamed; parsed with defusedxml "
    "(no entity expansion, no external entities).",
    schema={
        "type": "object",
        "properties": source_properties({
            "xmlText": {"type": "string", "description": "The XML text itself."},
        }) | {
            "recordPath": {"type": "string", "minLength": 1,
                           "description": "Which elements are records: 'products/product' or '//product' (at "
                           "any depth, matched from the end), '/catalog/products/product' (from the root); "
                           "dots separate too when there is no slash; '*' matches any name. Default: the root's "
                           "children."},
            "attributePrefix": {"type": "string", "default": "@",
                                "description": "Prefix of the fields made from attributes (@id)."},
            "encoding": {"type": "string", "minLength": 1,
                         "description": "Decode the file with this encoding instead of the one the document "
                         "declares (default: the declared one, UTF-8 without a declaration)."},
        },
        "additionalProperties": False,
    },
)
class XmlExtractor(FileExtractor):
    """An element becomes an object: attributes as ``<prefix>name``, children by name (repeated children as a
    list), text as ``#text`` next to attributes or children; a child with only text becomes that text. Names
    keep their namespace prefix (``g:price``)."""

    kind = "xml"

    def read(self, key: str, source: Source | None) -> Iterator[Batch]:
        self.prefix = self.config.get("attributePrefix", "@")
        self.match = self._matcher(self.config.get("recordPath"))
        if source.text is not None:
            stream: IO = io.StringIO(source.text)
        elif self.config.get("encoding"):
            stream = source.open_text(self._encoding())
        else:
            stream = source.open_binary()
        self._hold(stream)
        yield from self._emit(self._records(stream, source.label), source.identity)

    @staticmethod
    def _matcher(record_path: str | None) -> Callable[[list[tuple[str, str]]], bool]:
        if record_path is None:
            return lambda stack: len(stack) == 2
        text = record_path.strip()
        anchored = text.startswith("/") and not text.startswith("//")
        sep = "/" if "/" in text else "."
        segments = [s for s in text.strip("/").split(sep) if s]
        if not segments:
            raise ConfigError("recordPath names no element", field="recordPath")
        n = len(segments)

        def hit(seg: str, names: tuple[str, str]) -> bool:
            return seg == "*" or seg in names

        def match(stack: list[tuple[str, str]]) -> bool:
            if len(stack) < n or (anchored and len(stack) != n):
                return False
            return all(hit(seg, names) for seg, names in zip(segments, stack[-n:], strict=True))

        return match

    def _name(self, tag: str) -> tuple[str, str]:
        """(name with its prefix, local name)."""
        if tag[:1] == "{":
            uri, local = tag[1:].split("}", 1)
            prefix = self.namespaces.get(uri)
            return (f"{prefix}:{local}" if prefix else local), local
        return tag, tag

    def _records(self, stream: IO, label: str) -> Iterator[Record]:
        from defusedxml import DefusedXmlException
        from defusedxml.ElementTree import ParseError, iterparse

        self.namespaces: dict[str, str] = {}
        names: list[tuple[str, str]] = []
        elements: list = []
        inside: Any = None  # the record element being read
        try:
            for event, item in iterparse(stream, events=("start", "end", "start-ns"),
                                         forbid_dtd=False, forbid_entities=True, forbid_external=True):
                if event == "start-ns":
                    prefix, uri = item
                    self.namespaces.setdefault(uri, prefix)
                    continue
                if event == "start":
                    names.append(self._name(item.tag))
                    elements.append(item)
                    if inside is None and self.match(names):
                        inside = item
                    continue
                names.pop()
                elements.pop()
                if item is inside:
                    value = self._convert(item)
                    inside = None
                    yield value if isinstance(value, dict) else {"#text": value}
                if inside is None:
                    item.clear()  # done with it: keep memory bounded
                    if elements:
                        elements[-1].remove(item)
        except DefusedXmlException as exc:
            raise StepError(f"{label} refused: XML with entity declarations or external references is not "
                            f"allowed ({type(exc).__name__})", retryable=False) from None
        except ParseError as exc:
            line, column = getattr(exc, "position", (0, 0))
            raise StepError(f"invalid XML in {label}: line {line}, column {column}: {exc}",
                            retryable=False) from None
        except UnicodeDecodeError as exc:
            raise StepError(f"{label} is not valid text in its encoding: {exc.reason}", retryable=False) from None

    def _convert(self, elem) -> Any:
        children = list(elem)
        text = elem.text or ""
        if not elem.attrib and not children:
            return text
        out: dict[str, Any] = {}
        for key, value in elem.attrib.items():
            out[self.prefix + self._name(key)[0]] = value
        lists: set[str] = set()
        for child in children:
            key = self._name(child.tag)[0]
            value = self._convert(child)
            if key in lists:
                out[key].append(value)
            elif key in out:
                out[key] = [out[key], value]
                lists.add(key)
            else:
                out[key] = value
            if child.tail:
                text += child.tail
        if text.strip():
            out["#text"] = text.strip()
        return out


