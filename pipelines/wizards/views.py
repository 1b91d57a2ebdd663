"""The wizard pages: the start page, then one URL per page of a running wizard.

Every page is the same view (:func:`wizard_step`) driven by the page tables of :mod:`.import_pages` and
:mod:`.export_pages`. A page is answered with a POST: when its answers are right, the person goes on to
the next page (an htmx request gets the next page's panel and the URL pushed; a plain request is
redirected), otherwise the same page comes back with each problem at its field. Pages after the first
unanswered one cannot be opened (they redirect to it). Everything needs login and the permission to add
pipelines; the forms carry the CSRF token.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pipelines.views.common import can_add
from pipelines.wizards import export_pages, import_pages, shapes, state
from pipelines.wizards.pages import Errors

PAGES = {"import": import_pages.PAGES, "export": export_pages.PAGES}
TEMPLATE = "wizards/wizard.html"


@require_GET
@can_add
def wizard_start(request: HttpRequest) -> HttpResponse:
    return render(request, "wizards/start.html", {"templates": shapes.TEMPLATES.values()})


@require_POST
@can_add
def wizard_new(request: HttpRequest) -> HttpResponse:
    kind = request.POST.get("kind", "")
    template = request.POST.get("template", "")
    if kind not in state.STEPS or (template and template not in shapes.TEMPLATES):
        return render(request, "wizards/start.html", {"templates": shapes.TEMPLATES.values(),
                                                      "error": "choose the import or the export wizard"}, status=400)
    wid = state.start(request, kind, template if kind == "import" else "")
    return redirect("wizard-step", wid=wid, step="source")


@require_POST
@can_add
def wizard_cancel(request: HttpRequest, wid: str) -> HttpResponse:
    current = state.load(request, wid)
    source = current.get("source") or {}
    if current["kind"] == "import" and source.get("mode") == "upload" and source.get("fileId"):
        from django.core.files.storage import default_storage

        default_storage.delete(source["fileId"])
    state.finish(request, wid)
    messages.info(request, "The wizard was cancelled; nothing was created.")
    return redirect("pipeline-list")


@require_http_methods(["GET", "POST"])
@can_add
def wizard_step(request: HttpRequest, wid: str, step: str) -> HttpResponse:
    current = state.load(request, wid)
    kind = current["kind"]
    if step not in state.steps_of(current):
        raise Http404(f"the {kind} wizard has no page '{step}'")
    if not state.reachable(current, step):
        return redirect("wizard-step", wid=wid, step=state.first_open(current))
    _, post = PAGES[kind][step]
    errors = Errors()
    if request.method == "POST":
        if step == "review":
            errors, pipeline = post(request, current, wid)
            state.save(request, wid, current)
            if pipeline is not None:
                state.finish(request, wid)
                messages.success(request, f"Created {pipeline.name} ({pipeline.code}) with the {kind} wizard. "
                                 "Run it, or change any step in the editor.")
                url = reverse("pipeline-editor", args=[pipeline.code])
                if request.htmx:
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = url
                    return response
                return redirect(url)
        else:
            errors = post(request, current, wid)
            refresh = errors.pop("__refresh__", None) is not None
            if not errors and not refresh:
                state.answered(current, step)
                state.save(request, wid, current)
                following = state.next_step(current, step)
                if request.htmx:
                    return _page(request, wid, current, following, Errors(), push=True)
                return redirect("wizard-step", wid=wid, step=following)
            if refresh and not errors:
                # The page itself changed (options applied, tables listed): show it again, answered no further.
                state.answered(current, step)
                current["done"] = current["done"][:-1]
        state.save(request, wid, current)
    return _page(request, wid, current, step, errors, status=200 if not errors or request.htmx else 400)


def _page(request: HttpRequest, wid: str, current: dict, step: str, errors: Errors, *, push: bool = False,
          status: int = 200) -> HttpResponse:
    context_of, _ = PAGES[current["kind"]][step]
    names = state.steps_of(current)
    steps = [{"name": name, "label": label, "done": name in current["done"], "current": name == step,
              "reachable": state.reachable(current, name)}
             for name, label in state.STEPS[current["kind"]]]
    context = {"wid": wid, "kind": current["kind"], "step": step, "steps": steps, "errors": errors,
               "number": names.index(step) + 1, "count": len(names),
               "back": names[names.index(step) - 1] if names.index(step) > 0 else None,
               "action": reverse("wizard-step", args=[wid, step]),
               "page_template": f"wizards/{current['kind']}_{step}.html",
               **context_of(request, current, errors)}
    state.save(request, wid, current)  # a page's context may settle defaults (the first mapping)
    template = f"{TEMPLATE}#panel" if request.htmx else TEMPLATE
    response = render(request, template, context, status=status)
    if push:
        response["HX-Push-Url"] = reverse("wizard-step", args=[wid, step])
    return response
