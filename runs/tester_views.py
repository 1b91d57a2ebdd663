"""The step tester in the editor: a step card's "Test this step" panel posts here (htmx) and gets the result.

The work is :func:`runs.step_tester.try_step` on the person's draft (what they see in the editor, saved as
they type), never the published revision. Only people who may edit the pipeline may test its steps; the
steps run in this request, bounded by :data:`LIMITS`, as a dry run whose outbound HTTP goes through the
guarded client with the same allow-list as runs, and whose secrets are scrubbed from what is shown.
The tester lives with the runs (as Preview does), so the pipelines app does not depend on the engine.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from pipelines import access, drafts
from pipelines.models import Pipeline
from pipelines.views.common import can_change
from runs.engine.context import RunOptions
from runs.record_tables import record_table
from runs.step_tester import TESTABLE, CannotTest, Limits, Result, parse_records, try_step
from runs.store import close_connections_after

LIMITS = Limits(records=100, seconds=10.0)
# A lookup that hangs must not hold the request past the tester's own limit.
HTTP_TIMEOUT_SECONDS = 8.0
TEMPLATE = "pipelines/_step_tester.html"


def tester_options(pipeline: Pipeline) -> RunOptions:
    """What the tested steps get from outside, as a run gets it (runs.services.run_options), without a run."""
    from django.core.files.storage import default_storage

    from pipelines.connections import resolve_connection
    from pipelines.http import HttpClient, HttpPolicy
    from pipelines.redaction import Redactor
    from pipelines.secrets import resolve_secret

    policy = HttpPolicy(allow=tuple(settings.DATAHUB_HTTP_ALLOW), max_bytes=settings.DATAHUB_HTTP_MAX_BYTES,
                        timeout=HTTP_TIMEOUT_SECONDS)
    redactor = Redactor()
    return RunOptions(
        pipeline_code=pipeline.code,
        http=HttpClient(policy, redactor=redactor),
        storage=default_storage,  # a dry run: operators store nothing
        secret=redactor.watch(resolve_secret),
        connection=resolve_connection,
        thread_wrapper=close_connections_after,
        redactor=redactor,
    )


@require_POST
@can_change
def step_test(request: HttpRequest, code: str, key: str) -> HttpResponse:
    pipeline = access.get_or_404(request.user, Pipeline.objects, code=code)
    definition, draft = drafts.working_definition(pipeline, request.user)
    if not any(s.get("key") == key for s in definition.get("steps", [])):
        raise Http404("no such step")
    source = "pasted" if request.POST.get("source") == "pasted" else "sample"
    context: dict[str, Any] = {"key": key, "source": source}
    if draft is not None and (draft.pending or {}).get(f"step:{key}"):
        context["pending"] = True
    try:
        records = parse_records(request.POST.get("records", ""), LIMITS) if source == "pasted" else None
        result = try_step(definition, key, records=records, options=tester_options(pipeline), limits=LIMITS)
    except CannotTest as exc:
        context["problem"] = str(exc)
    else:
        context.update(shown(result))
    # 200 also for a refusal: the panel shows it where the result would be (htmx swaps only 2xx answers).
    return render(request, f"{TEMPLATE}#result", context)


def shown(result: Result) -> dict:
    """The result as the template shows it: texts only (the template escapes them), tables per branch."""
    if result.step_type == "ROUTE":
        branches = [(name, record_table(records)) for name, records in result.outputs.items() if name != "output"]
    else:
        branches = [("output", record_table(result.outputs.get("output", [])))]
    rows = []
    for row in result.rows or []:
        changes = [(c.kind, c.path, text(c.before), text(c.after)) for output in row.changes for c in output]
        rows.append({"n": row.index + 1, "fate": row.fate, "changes": changes, "error": row.error,
                     "branches": row.branches, "outputs": len(row.outputs)})
    return {
        "result": result,
        "input_table": record_table(result.input),
        "branches": branches,
        "rows": rows,
        "errors": [(text(record, indent=True), message) for record, message in result.errors[:100]],
        "out_count": len(result.outputs.get("output", [])),
        "testable": TESTABLE,
    }


def text(value: Any, *, indent: bool = False) -> str:
    """A value as JSON text (a string quoted, so that spaces show), shortened when long."""
    out = json.dumps(value, ensure_ascii=False, default=str, indent=2 if indent else None)
    return out if len(out) <= 2000 else out[:1999] + "…"
