"""The rows of the waiting gates on the gate list (``gates/list.html``), written in Python.

The gate list shows every run's gates, so any run's write invalidates it in the page cache, and it polls
itself every 5 s: with a run running it is rendered whole at each poll. As for the run table
(:mod:`runs.run_rows`), each row is one ``format_html`` instead of about 30 template nodes: the same
cells, every value escaped, the same filters called.
"""

from __future__ import annotations

from django.contrib.humanize.templatetags.humanize import naturaltime
from django.template.defaultfilters import floatformat, timesince_filter
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from pipelines.links import link_maker


def finish(gates) -> list:
    """The waiting gates, each with its table row as ``row``."""
    gates = list(gates)
    review, run_page = link_maker("gates:review", 2), link_maker("run-detail")
    for g in gates:
        g.row = _row(g, review(g.run_id, g.step_key), run_page(g.run_id))
    return gates


def _row(g, review_url: str, run_url: str) -> SafeString:
    pipeline = g.run.pipeline
    local = timezone.localtime(g.created_at)
    timeout = (format_html('<div class="cell-sub">approves by itself {}</div>', naturaltime(g.timeout_at))
               if g.timeout_at else "")
    rate = (g.stats or {}).get("errorRatePercent")
    cells = [
        format_html('<td><span class="cell-main">{}</span><div class="cell-sub"><code>{}</code></div></td>',
                    pipeline.name or pipeline.code, pipeline.code),
        format_html('<td><a href="{}">#{}</a></td><td><code>{}</code></td>', run_url, g.run_id, g.step_key),
        format_html('<td><span class="badge type">{}</span>{}</td>', g.approval_type, timeout),
        format_html('<td class="nowrap" title="{}">{}<div class="cell-sub">{} ago</div></td>',
                    local.strftime("%Y-%m-%d %H:%M:%S %Z"), local.strftime("%Y-%m-%d %H:%M"),
                    timesince_filter(g.created_at)),
        format_html('<td class="num">{}</td><td class="num">{}</td>', g.record_count,
                    "—" if rate is None else format_html("{} %", floatformat(rate, 2))),
        format_html('<td class="actions"><a class="btn small primary" href="{}">Review</a></td>', review_url),
    ]
    return format_html('<tr data-gate="{}/{}">{}</tr>', g.run_id, g.step_key, mark_safe("".join(cells)))
