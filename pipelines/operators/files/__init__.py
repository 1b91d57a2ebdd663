"""File operators: ``imageResize``, ``imageConvert`` (Pillow) and ``pdfGenerate`` (WeasyPrint). [pure]

One concern per module: :mod:`.images` (the image operators and their resize plan), :mod:`.sources` (where a
source file comes from), :mod:`.template` (the HTML template engine), :mod:`.pdf` (the PDF operator and
WeasyPrint), :mod:`._writer` (where a produced file goes, shared by both operator families). Importing
the package registers the operators (images first, then PDF: the catalogue's order).

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


from pipelines.operators.files import images, pdf  # noqa: F401  (registers the operators)
