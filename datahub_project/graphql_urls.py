"""GraphQL at /graphql/, with the REST API's authentication.

A program sends ``Authorization: Token <key>`` (no CSRF: a token is not sent by a browser on its own);
a browser uses its session, and then a POST needs the CSRF token like any form. Without either the
answer is 401 (a browser asking for the page is sent to the login page).

GraphiQL is shown to logged-in people only, for a browser GET. Our own template replaces
graphene-django's (which loads React and GraphiQL from cdn.jsdelivr.net): GraphiQL and React are vendored
in static/vendor/ by scripts/vendor-static, so the page works with no network and no inline script.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from graphene_django.views import GraphQLView, HttpError
from rest_framework.exceptions import AuthenticationFailed, Throttled

from datahub_project.lockout import LockoutTokenAuthentication, throttle_wait
from pipelines.rest_plumbing import has_nul
from pipelines.schema import ErrorMiddleware


class _CSRFCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


def csrf_failure(request) -> str | None:
    """Why Django's CSRF check refuses this request, or None when it passes."""
    check = _CSRFCheck(lambda r: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


def _error(status: int, message: str, code: str, **headers) -> JsonResponse:
    response = JsonResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


class DatahubGraphQLView(GraphQLView):
    graphiql = True
    graphiql_template = "graphql/graphiql.html"

    def dispatch(self, request, *args, **kwargs):
        try:
            authenticated = LockoutTokenAuthentication().authenticate(request)
        except Throttled as exc:
            return _error(429, str(exc.detail), "LOCKED_OUT")
        except AuthenticationFailed as exc:
            return _error(401, str(exc.detail), "UNAUTHENTICATED", WWW_Authenticate="Token")
        if authenticated is not None:
            request.user = authenticated[0]
        elif not request.user.is_authenticated:
            if request.method == "GET" and self.request_wants_html(request):
                return redirect_to_login(request.get_full_path())
            return _error(401, "authentication required: log in or send 'Authorization: Token <key>'",
                          "UNAUTHENTICATED", WWW_Authenticate="Token")
        elif request.method not in ("GET", "HEAD", "OPTIONS"):
            reason = csrf_failure(request)
            if reason is not None:
                return _error(403, f"CSRF check failed: {reason}", "FORBIDDEN")
        wait = throttle_wait(request)
        if wait is not None:
            return _error(429, f"too many requests: try again in {int(wait) + 1} s", "THROTTLED",
                          Retry_After=str(int(wait) + 1))
        return super().dispatch(request, *args, **kwargs)

    @classmethod
    def can_display_graphiql(cls, request, data):
        return request.user.is_authenticated and super().can_display_graphiql(request, data)

    def parse_body(self, request):
        try:
            request.body  # noqa: B018 - reads it here: graphene turns every error of this read into a 400
            return super().parse_body(request)
        except (RequestDataTooBig, TooManyFieldsSent):
            raise HttpError(HttpResponse(status=413),
                            f"the request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes") from None
        except RecursionError:
            raise HttpError(HttpResponse(status=400), "POST body sent invalid JSON (nested too deeply).") from None

    @staticmethod
    def get_graphql_params(request, data):
        query, variables, operation_name, id_ = GraphQLView.get_graphql_params(request, data)
        variables = variables or None
        if query is not None and not isinstance(query, str):
            raise HttpError(HttpResponse(status=400), "query must be a string")
        if variables is not None and not isinstance(variables, dict):
            raise HttpError(HttpResponse(status=400), "variables must be a JSON object")
        if operation_name is not None and not isinstance(operation_name, str):
            raise HttpError(HttpResponse(status=400), "operationName must be a string")
        if has_nul([query, variables, operation_name]):
            # PostgreSQL cannot store NUL characters; refuse them here rather than fail in a resolver.
            raise HttpError(HttpResponse(status=400), "text may not contain NUL (\\u0000) characters")
        return query, variables, operation_name, id_


graphql_view = csrf_exempt(DatahubGraphQLView.as_view(middleware=[ErrorMiddleware()]))

urlpatterns = [
    path("", graphql_view, name="graphql"),
]
