"""A request body must say its length.

Under WSGI, Django reads a body only as far as Content-Length says: a chunked request without one would be
read as empty, and a webhook or API call would go on as if nothing had been sent. Such a request is
refused with 411 Length Required before any view sees it (gunicorn and nginx pass the header through;
clients that stream a body can send its length or buffer it).
"""

from __future__ import annotations

from django.http import JsonResponse


def body_length_middleware(get_response):
    def middleware(request):
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not request.META.get("CONTENT_LENGTH"):
            return JsonResponse(
                {"detail": "a request body must come with a Content-Length header (chunked transfer without "
                           "one is not read)"},
                status=411,
            )
        return get_response(request)

    return middleware
