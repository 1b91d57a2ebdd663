"""The page where a person creates and revokes their API token (REST and GraphQL).

DRF's ``authtoken`` keeps one token per user: creating one replaces the old one, revoking deletes it.
The key is shown once, in the answer to the request that created it, and never again.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token

from datahub_project.lockout import TokenCreateThrottle


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    token = Token.objects.filter(user=request.user).first()
    new_key = None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            throttle = TokenCreateThrottle()
            if not throttle.allow_request(request, None):
                messages.error(request, f"Too many new tokens: try again in {int(throttle.wait() or 1) + 1} s.")
                return render(request, "accounts/tokens.html", {
                    "token": token, "new_key": None, "api_base": request.build_absolute_uri("/api/")}, status=429)
            with transaction.atomic():
                Token.objects.filter(user=request.user).delete()
                token = Token.objects.create(user=request.user)
            new_key = token.key
        elif action == "revoke":
            deleted, _ = Token.objects.filter(user=request.user).delete()
            messages.success(request, "Your API token was revoked." if deleted else "You had no API token.")
            return redirect("api-tokens")
        else:
            return HttpResponseBadRequest("unknown action: use create or revoke")
    return render(request, "accounts/tokens.html", {
        "token": token,
        "new_key": new_key,
        "api_base": request.build_absolute_uri("/api/"),
    })
