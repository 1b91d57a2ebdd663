"""The rows of the run table (``runs/_run_table.html``: the run list and the dashboard), written in Python.

A run list the page cache cannot serve (right after a write, which a running run makes every second) is
rendered whole, and a 25-row table cost most of its rendering in the template engine's per-cell work:
about 40 variable and filter nodes a row, each resolved through the context (cProfile of the list,
bench/bench_page_cpu.py --profile "run list"). Here each row is one ``format_html``: the same cells,
every value escaped as a template variable is, the same filters called as functions.
"""

from __future__ import annotations

from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import timesince_filter, title
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from pipelines.links import link_maker

DASH = "—"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def finish(runs, *, narrow: bool = False) -> list:
    """The runs (with ``_with_progress``'s counts), each with its table row as ``row``: all columns, or
    with ``narrow`` those that fit in half a page (no progress bar, duration or trigger)."""
    runs = list(runs)
    detail, editor = link_maker("run-detail"), link_maker("pipeline-editor")
    for r in runs:
        r.row = _row(r, detail(r.pk), editor(r.pipeline.code), narrow)
    return runs


def _row(r, detail_url: str, editor_url: str, narrow: bool) -> SafeString:
    created = timezone.localtime(r.created_at).strftime("%Y-%m-%d %H:%M:%S")
    cells = [
        format_html('<td class="nowrap"><a class="cell-main" href="{}">#{}</a></td>', detail_url, r.pk),
        format_html('<td><a href="{}">{}</a><div class="cell-sub"><code>{}</code> · r{}</div></td>',
                    editor_url, r.pipeline.name, r.pipeline.code, r.revision.number),
        format_html('<td><span class="badge s-{}">{}</span>{}</td>', r.status.lower(), title(r.status),
                    mark_safe(' <span class="badge s-dry plain">dry run</span>') if r.dry_run else ""),
    ]
    if not narrow:
        cells.append(_progress(r))
    cells += [
        format_html('<td class="num">{}</td>', DASH if r.records is None else intcomma(r.records)),
        format_html('<td class="num"><span class="u-bad u-w600">{}</span></td>', intcomma(r.errors)) if r.errors
        else mark_safe('<td class="num"><span class="muted">0</span></td>'),
        format_html('<td class="nowrap muted" title="{}">{} ago</td>', created, timesince_filter(r.created_at)),
    ]
    if not narrow:
        by = format_html(" · {}", r.triggered_by.username) if r.triggered_by else ""
        cells += [format_html('<td class="nowrap muted">{}</td>', duration_text(r.duration_seconds)),
                  format_html('<td class="muted">{}{}</td>', r.trigger, by)]
    return mark_safe("<tr>" + "".join(cells) + "</tr>")


def _progress(r) -> SafeString:
    if not r.steps_total:
        return mark_safe(f'<td class="u-minw-120"><span class="muted">{DASH}</span></td>')
    bar = "p-bad" if r.status == "FAILED" else "p-run" if r.status == "RUNNING" else "p-ok"
    return format_html('<td class="u-minw-120"><div class="progress" title="{} of {} steps ended"><span class="{}" '
                       'data-width="{}"></span></div><div class="cell-sub">{}/{} steps</div></td>',
                       r.steps_done, r.steps_total, bar, round(r.steps_done / r.steps_total * 100),
                       r.steps_done, r.steps_total)
