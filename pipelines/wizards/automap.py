"""Which source column goes to which target field: names matched loosely, one-to-one. [pure]

Names are compared as :func:`normalize` makes them: lower case, accents dropped, camelCase split, every
run of separators (space, ``-``, ``_``, ``.``, ``/``) one ``_``; ``Variant SKU``, ``variant-sku`` and
``variantSku`` are the same name. Then, best first (:data:`SCORES`):

1. the same normalized name;
2. the same letters without separators (``e_mail`` and ``email``);
3. synonyms: both names in one group of :data:`SYNONYMS` (``qty``, ``quantity``, ``stock``, ...);
4. one name's words contain the other's (``variant_price`` and ``price``), or differ only by a plural;
5. close spelling (difflib ratio of at least 0.8: ``pirce`` and ``price``).

Pairs are taken best score first, each source and each target at most once, so a target never gets two
sources and an exact match is never lost to a loose one. Ties go to the earlier column. What is
guaranteed: the same inputs give the same mapping.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Each group: names that mean the same thing in product, stock, price and customer files.
SYNONYMS: tuple[frozenset[str], ...] = tuple(frozenset(g) for g in (
    {"sku", "variant_sku", "article_number", "article_no", "item_number", "item_no", "product_code",
     "part_number", "artikelnummer", "item_code", "mpn"},
    {"name", "title", "product_name", "item_name", "product_title", "label"},
    {"description", "body", "body_html", "desc", "long_description", "details"},
    {"short_description", "summary", "excerpt", "teaser"},
    {"price", "unit_price", "variant_price", "regular_price", "list_price", "retail_price", "amount", "preis"},
    {"sale_price", "special_price", "offer_price", "discount_price", "compare_at_price",
     "variant_compare_at_price"},
    {"cost", "cost_price", "purchase_price", "cost_per_item"},
    {"currency", "currency_code", "ccy"},
    {"stock", "qty", "quantity", "stock_level", "stock_quantity", "inventory", "inventory_qty",
     "variant_inventory_qty", "on_hand", "available", "stock_on_hand", "bestand", "menge"},
    {"slug", "handle", "url_key", "permalink"},
    {"barcode", "ean", "gtin", "upc", "variant_barcode", "ean13"},
    {"weight", "variant_grams", "weight_kg", "grams"},
    {"brand", "vendor", "manufacturer", "make"},
    {"category", "categories", "product_type", "product_category", "collection"},
    {"tags", "keywords", "labels"},
    {"link", "url", "product_url", "product_link", "page_url"},
    {"image", "image_url", "image_src", "images", "picture", "photo", "thumbnail"},
    {"active", "enabled", "published", "is_active", "visible", "status_active"},
    {"email", "e_mail", "mail", "email_address"},
    {"first_name", "firstname", "given_name", "forename", "vorname"},
    {"last_name", "lastname", "surname", "family_name", "nachname"},
    {"phone", "telephone", "phone_number", "mobile", "tel"},
    {"zip", "postcode", "postal_code", "zip_code", "plz"},
    {"city", "town", "locality", "ort"},
    {"country", "country_code", "land"},
    {"street", "address", "address1", "address_line_1", "street_address"},
    {"created_at", "created", "date_created", "creation_date"},
    {"updated_at", "updated", "modified", "date_modified", "last_modified"},
    {"warehouse", "location", "stock_location", "store", "site"},
))

SCORES = {"exact": 1.0, "compact": 0.95, "synonym": 0.85, "words": 0.7, "spelling": 0.6}
SPELLING_RATIO = 0.8


@dataclass(frozen=True)
class Match:
    source: str
    target: str
    score: float
    reason: str  # exact, compact, synonym, words, spelling


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def normalize(name: str) -> str:
    """``Variant SKU`` -> ``variant_sku``; ``productName`` -> ``product_name``; ``Größe`` -> ``grosse``."""
    text = unicodedata.normalize("NFKD", str(name).replace("ß", "ss"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _CAMEL.sub("_", text.strip()).lower()
    return _SEPARATORS.sub("_", text).strip("_")


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _group(name: str) -> int | None:
    for n, group in enumerate(SYNONYMS):
        if name in group:
            return n
    return None


def score(source: str, target: str) -> tuple[float, str] | None:
    """How well two names match (:data:`SCORES`), or None when they do not."""
    a, b = normalize(source), normalize(target)
    if not a or not b:
        return None
    if a == b:
        return SCORES["exact"], "exact"
    if a.replace("_", "") == b.replace("_", ""):
        return SCORES["compact"], "compact"
    ga, gb = _group(a), _group(b)
    if ga is None:
        ga = _group(a.replace("_", ""))
    if gb is None:
        gb = _group(b.replace("_", ""))
    if ga is not None and ga == gb:
        return SCORES["synonym"], "synonym"
    wa = [_singular(w) for w in a.split("_")]
    wb = [_singular(w) for w in b.split("_")]
    if wa == wb:
        return SCORES["compact"], "compact"
    short, long_ = (wa, wb) if len(wa) <= len(wb) else (wb, wa)
    if set(short) <= set(long_) and len(short) >= 1 and any(len(w) > 2 for w in short):
        return SCORES["words"], "words"
    if min(len(a), len(b)) >= 4 and difflib.SequenceMatcher(None, a, b).ratio() >= SPELLING_RATIO:
        return SCORES["spelling"], "spelling"
    return None


def automap(sources: Sequence[str], targets: Sequence[str]) -> list[Match]:
    """The best one-to-one matches between ``sources`` and ``targets``, in the order of ``targets``."""
    candidates = []
    for i, source in enumerate(sources):
        for j, target in enumerate(targets):
            found = score(source, target)
            if found is not None:
                candidates.append((-found[0], i, j, found[1]))
    candidates.sort()
    used_sources: set[int] = set()
    used_targets: set[int] = set()
    chosen: dict[int, Match] = {}
    for neg, i, j, reason in candidates:
        if i in used_sources or j in used_targets:
            continue
        used_sources.add(i)
        used_targets.add(j)
        chosen[j] = Match(sources[i], targets[j], -neg, reason)
    return [chosen[j] for j in sorted(chosen)]


def best(name: str, choices: Iterable[str]) -> str | None:
    """The one choice that matches ``name`` best, or None."""
    ranked = [(s[0], n, c) for n, c in enumerate(choices) if (s := score(name, c)) is not None]
    if not ranked:
        return None
    ranked.sort(key=lambda t: (-t[0], t[1]))
    return ranked[0][2]


def field_name(name: str) -> str:
    """A target field name for a free-form target (a REST body, a file): the normalized source name, or
    ``field`` when nothing is left of it."""
    return normalize(name) or "field"
