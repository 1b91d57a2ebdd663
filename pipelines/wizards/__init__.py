"""The import and export wizards: a file or a connection becomes an ordinary pipeline in a few pages.

The plain-Python core (no Django, no HTTP; unit-tested on its own):

- :mod:`.sniff` [pure]: what an uploaded file is (CSV, JSON, XLSX, refused otherwise), its first records
  read by the pipeline's own file extractor, and the type of each column guessed from them;
- :mod:`.automap` [pure]: which source column goes to which target field, names matched loosely (case,
  separators, camelCase, common synonyms);
- :mod:`.shapes` [pure]: the templates for common files (Shopify and WooCommerce product CSVs, a price
  list, a stock list): their mapping and strategy, applied to the person's own file and table;
- :mod:`.build` [pure]: the wizard's answers checked (every problem with the field it belongs to) and
  turned into a definition: [TRIGGER] -> EXTRACT -> TRANSFORM (map and convert) -> LOAD, or for an export
  EXTRACT -> TRANSFORM -> EXPORT.

The pages (Django): :mod:`.targets` (SQL tables and their columns, allowed models, connections a person
may use), :mod:`.state` (the answers so far, kept in the session), :mod:`.forms` and :mod:`.views`.
"""
