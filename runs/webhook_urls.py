"""Webhook triggers: POST /hooks/<pipeline code>/ (or /hooks/<code>/<trigger key>/); see runs.webhooks."""

from django.urls import re_path

from runs import webhooks

app_name = "hooks"

# The trailing slash is optional: a machine POSTing without it must not get a redirect it cannot follow.
urlpatterns = [
    re_path(r"^(?P<code>[a-z0-9][a-z0-9_-]*)/?$", webhooks.receive, name="receive"),
    re_path(r"^(?P<code>[a-z0-9][a-z0-9_-]*)/(?P<trigger_key>[A-Za-z0-9][A-Za-z0-9_.-]*)/?$", webhooks.receive,
            name="receive-trigger"),
]
