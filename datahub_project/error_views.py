"""Error pages that speak the caller's language: JSON for programs (/api/, /graphql/, /hooks/), HTML for people.

Django's own 404 comes from the URL resolver before any API view runs (an id that does not match the
route's converter), so without this a program would get an HTML page where its schema promises JSON.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.views import defaults

_MACHINE_PREFIXES = ("/api/", "/graphql/", "/hooks/")


def _for_machines(request) -> bool:
    return request.path.startswith(_MACHINE_PREFIXES)


def not_found(request, exception=None):
    if _for_machines(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _for_machines(request):
        return JsonResponse({"detail": "Internal error; it has been logged."}, status=500)
    return defaults.server_error(request)
