"""File extractors: ``csv`` (and TSV), ``json`` (and NDJSON), ``xml`` and ``xlsx``. [pure; reads two Django
settings lazily]

Where a file comes from (the same config names for every file extractor; give exactly one):

- inline text: ``csvText`` / ``jsonText`` / ``xmlText`` (``rows`` too for csv: objects, or arrays with a
  header row first), for small data and tests;
- ``fileId`` or ``storagePath``: a name in the run's Django storage (``ctx.storage``), where uploads are
  saved; the two names mean the same (``fileId`` is the plugin's);
- ``path``: a file on the worker's disk, which must resolve, after following symlinks, inside one of the
  folders of the setting ``DATAHUB_FILE_ROOTS`` (a relative path is tried under each of them). With no
  folders configured, ``path`` is refused: files never come from anywhere on disk.

Every file is capped at the setting ``DATAHUB_MAX_FILE_BYTES`` (default 100 MiB): a larger file is a
ConfigError naming the file and the limit, checked before reading and again while reading.

CSV, NDJSON and XML are read incrementally and handed on in batches of ``ctx.batch_size``, so a large
file is never whole in memory (XML through ``defusedxml.ElementTree.iterparse``, clearing each record's
elements once converted). A JSON document (not NDJSON) is parsed whole, within the size cap; an XLSX
workbook is read with openpyxl in read-only mode, row by row.

A malformed row (a CSV row with the wrong number of fields, a broken quote, an NDJSON line that is not a
JSON object) fails the step with ``line N: ...``; with ``onBadRow: "skip"`` it is skipped with a warning
on the step instead.

Checkpoint (``resumable: true``): the step keeps ``checkpoint["offset"]``, the number of records already
read from the source, and the next run skips that many (the plugin checkpoints the file offset the same
way, to read only rows appended since). The offset counts records, not bytes, so a resumed read re-parses
the skipped rows: cheaper than it sounds, and right for quoted CSV fields that span lines. It is kept
with the source's identity, so a different file starts from the beginning; ``resetCheckpoint: true``
starts from the beginning once. Dry runs and previews (a record limit) never move the offset. Without
``resumable`` the checkpoint is not touched.

XML security: every XML parse goes through defusedxml: entity declarations (the "billion laughs" bomb,
external entities) and external references are refused, never expanded. openpyxl parses the sheets of an
XLSX file with defusedxml too when it is installed (it is a dependency).

One concern per module: :mod:`.sources` (where the bytes come from: inline text, a stored file or a path
under an allowed root, size-capped), :mod:`.extractor` (the schema pieces and the machinery every format
shares: encoding, limits, bad rows, batching), then one module per format (:mod:`.csv_extractor`,
:mod:`.json_extractor`, :mod:`.xml_extractor`, :mod:`.xlsx_extractor`). Importing the package registers
the extractors in the catalogue's order.
"""

from pipelines.adapters.files.csv_extractor import CsvExtractor
from pipelines.adapters.files.json_extractor import JsonExtractor
from pipelines.adapters.files.xlsx_extractor import XlsxExtractor
from pipelines.adapters.files.xml_extractor import XmlExtractor

__all__ = ["CsvExtractor", "JsonExtractor", "XmlExtractor", "XlsxExtractor"]
