"""pdfGenerate against WeasyPrint called directly: PDFs per second for a one-page invoice, in the same run.

    .venv/bin/python bench/bench_pdf.py [--invoices 20] [--rounds 3]

Both sides render the same invoice (a header, a 15-line table with UTF-8 text, a total) to PDF bytes:
WeasyPrint directly from the HTML already filled in, and the operator from its template with {{...}}
placeholders and an {{#each}} loop over the record's lines (filling and escaping included), writing a
data URI. The figure is the median over ``--rounds`` rounds, one thread.
"""

from __future__ import annotations

import argparse
import html
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.plugins import load_plugins  # noqa: E402

load_plugins([], entry_point_group=None)

from pipelines.operators.chain import OperatorChain  # noqa: E402

STYLE = "body{font-family:DejaVu Sans;font-size:10pt} table{width:100%;border-collapse:collapse} td{border-bottom:1px solid #ccc}"
TEMPLATE = (
    f"<html><head><style>{STYLE}</style></head><body><h1>Invoice {{{{number}}}}</h1><p>{{{{customer}}}}</p>"
    "<table>{{#each lines}}<tr><td>{{sku}}</td><td>{{name}}</td><td>{{qty}}</td><td>{{price}} €</td></tr>"
    "{{/each}}</table><p>Total: {{total}} €</p></body></html>"
)


def invoice(n: int) -> dict:
    lines = [{"sku": f"SKU-{i}", "name": f"Gartenstuhl Grün Größe {i}", "qty": i % 4 + 1, "price": f"{9.5 + i:.2f}"}
             for i in range(15)]
    return {"number": f"2026-{n:05d}", "customer": "Müller & Söhne GmbH", "lines": lines, "total": "245.50"}


def filled(record: dict) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(line['sku']))}</td><td>{html.escape(line['name'])}</td>"
                   f"<td>{line['qty']}</td><td>{line['price']} €</td></tr>" for line in record["lines"])
    return (f"<html><head><style>{STYLE}</style></head><body><h1>Invoice {record['number']}</h1>"
            f"<p>{html.escape(record['customer'])}</p><table>{rows}</table><p>Total: {record['total']} €</p>"
            "</body></html>")


def direct(records: list[dict]) -> list[bytes]:
    from weasyprint import HTML

    return [HTML(string=filled(r)).write_pdf() for r in records]


def operator(records: list[dict]) -> list[dict]:
    chain = OperatorChain([{"op": "pdfGenerate", "args": {"template": TEMPLATE, "targetField": "pdf",
                                                           "output": "dataUri"}}])
    result = chain.apply(records)
    assert not result.failures, result.failures[:1]
    return result.records


def timed(fn, records) -> float:
    started = time.perf_counter()
    fn(records)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invoices", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    records = [invoice(n) for n in range(args.invoices)]
    direct(records[:2])  # warm-up: fonts, pango
    operator(records[:2])
    assert operator(records[:1])[0]["pdf"].startswith("data:application/pdf;base64,")
    base = statistics.median(timed(direct, records) for _ in range(args.rounds))
    ours = statistics.median(timed(operator, records) for _ in range(args.rounds))
    print(f"{args.invoices} one-page invoices, median of {args.rounds} rounds, one thread")
    print(f"  WeasyPrint directly (baseline)   {args.invoices / base:6.1f} PDFs/s   {base / args.invoices * 1000:6.1f} ms/PDF")
    print(f"  pdfGenerate operator             {args.invoices / ours:6.1f} PDFs/s   {ours / args.invoices * 1000:6.1f} ms/PDF")
    print(f"  operator / direct time: {ours / base:.2f}x")


if __name__ == "__main__":
    main()
