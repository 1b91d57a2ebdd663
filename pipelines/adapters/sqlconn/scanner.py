"""User-written queries: one SELECT, nothing that changes data, placeholders for the driver. [pure]

A small tokenizer (literals, quoted names, comments, dollar quotes, placeholders) rather than a regex over
the text, so that a keyword inside a string or a quoted name is not mistaken for one in the query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipelines.errors import ConfigError

# Keywords that change data or state, refused anywhere in an extractor's query (outside literals and quoted
# names). The read-only transaction the query runs in is the real guard; this check explains the refusal.
FORBIDDEN_KEYWORDS = frozenset(
    "INSERT UPDATE DELETE MERGE UPSERT DROP ALTER CREATE TRUNCATE GRANT REVOKE COPY CALL EXEC EXECUTE "
    "LOCK UNLOCK ATTACH DETACH PRAGMA VACUUM INTO LOAD HANDLER SHUTDOWN KILL REINDEX REFRESH LISTEN NOTIFY "
    "PREPARE DEALLOCATE COMMIT ROLLBACK SAVEPOINT".split()
)

_WORD = re.compile(r"[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")
_DOLLAR_PARAM = re.compile(r"\$(\d+)")


@dataclass(frozen=True)
class _Token:
    kind: str  # word, literal (strings, quoted names), param_q, param_n, semicolon, comment, other
    text: str
    number: int = 0


def scan(sql: str, dialect: str) -> list[_Token]:
    """Split ``sql`` so that literals, quoted names and comments are never mistaken for code.

    ``dialect`` is "postgres", "mysql" or "sqlite": MySQL strings take backslash escapes and ``#``
    starts a comment; PostgreSQL has dollar-quoted strings and E'' strings; SQLite quotes names with [].
    An unterminated literal raises ConfigError (the database would refuse it anyway).
    """
    tokens: list[_Token] = []
    i, n = 0, len(sql)
    other_start = None

    def flush(upto: int):
        nonlocal other_start
        if other_start is not None and other_start < upto:
            tokens.append(_Token("other", sql[other_start:upto]))
        other_start = None

    def quoted(start: int, close: str, backslash: bool) -> int:
        j = start + 1
        while j < n:
            c = sql[j]
            if backslash and c == "\\":
                j += 2
                continue
            if c == close:
                if j + 1 < n and sql[j + 1] == close:
                    j += 2
                    continue
                return j + 1
            j += 1
        raise ConfigError("the query has an unterminated quote", field="query")

    while i < n:
        c = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if c == "'":
            flush(i)
            backslash = dialect == "mysql" or (
                dialect == "postgres" and tokens and tokens[-1].kind == "word" and tokens[-1].text in ("E", "e")
                and tokens[-1].text == sql[i - 1:i]
            )
            j = quoted(i, "'", backslash)
            tokens.append(_Token("literal", sql[i:j]))
            i = j
        elif c == '"' or c == "`" and dialect in ("mysql", "sqlite") or c == "[" and dialect == "sqlite":
            flush(i)
            close = "]" if c == "[" else c
            j = quoted(i, close, backslash=(dialect == "mysql" and c == '"'))
            tokens.append(_Token("literal", sql[i:j]))
            i = j
        elif (c == "-" and nxt == "-") or (c == "/" and nxt == "*") or (c == "#" and dialect == "mysql"):
            flush(i)
            tokens.append(_Token("comment", sql[i:i + 2]))
            end = sql.find("*/", i + 2) + 2 if c == "/" else sql.find("\n", i)
            i = n if end <= 1 or end == -1 else end
        elif c == "$":
            flush(i)
            m = _DOLLAR_PARAM.match(sql, i)
            tag = _DOLLAR_TAG.match(sql, i) if dialect == "postgres" else None
            if m:
                tokens.append(_Token("param_n", m.group(0), int(m.group(1))))
                i = m.end()
            elif tag:
                end = sql.find(tag.group(0), tag.end())
                if end == -1:
                    raise ConfigError("the query has an unterminated $-quoted string", field="query")
                j = end + len(tag.group(0))
                tokens.append(_Token("literal", sql[i:j]))
                i = j
            else:
                tokens.append(_Token("other", c))
                i += 1
        elif c == "?":
            flush(i)
            tokens.append(_Token("param_q", c))
            i += 1
        elif c == ";":
            flush(i)
            tokens.append(_Token("semicolon", c))
            i += 1
        else:
            m = _WORD.match(sql, i) if (c.isalpha() or c == "_" or ord(c) >= 0x80) else None
            if m:
                flush(i)
                tokens.append(_Token("word", m.group(0)))
                i = m.end()
            else:
                if other_start is None:
                    other_start = i
                i += 1
    flush(n)
    return tokens


def check_select(sql: Any, dialect: str = "postgres") -> str:
    """``sql`` if it is one read-only SELECT (or WITH ... SELECT) statement, else ConfigError.

    A single trailing ``;`` is dropped. Refused: any other ``;``, comments, and the keywords in
    :data:`FORBIDDEN_KEYWORDS` outside literals and quoted names (quote a column that has such a name).
    """
    if not isinstance(sql, str) or not sql.strip():
        raise ConfigError("the query is empty", field="query")
    text = sql.strip()
    tokens = scan(text, dialect)
    if tokens and tokens[-1].kind == "semicolon":  # one trailing ';' is harmless
        tokens.pop()
        text = text[: text.rfind(";")].rstrip()
    kinds = [t.kind for t in tokens]
    if "comment" in kinds:
        raise ConfigError("comments are not allowed in the query", field="query")
    if "semicolon" in kinds:
        raise ConfigError("the query must be a single statement: ';' is not allowed", field="query")
    words = [t.text.upper() for t in tokens if t.kind == "word"]
    if not words or words[0] not in ("SELECT", "WITH"):
        first = words[0] if words else text.split()[0]
        raise ConfigError(f"the query must be a SELECT (or WITH ... SELECT) statement, not {first}", field="query")
    bad = sorted({w for w in words if w in FORBIDDEN_KEYWORDS})
    if bad:
        raise ConfigError(f"the query may only read data, but it contains {', '.join(bad)} (quote a name "
                          "that is spelt like one of these keywords)", field="query")
    if "SELECT" not in words:
        raise ConfigError("the query must contain a SELECT", field="query")
    return text
