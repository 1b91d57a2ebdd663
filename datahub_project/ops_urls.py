"""Operations endpoints at the root: /healthz (load balancers, no login), /metrics (Prometheus) and the
settings page for admins."""

from django.urls import path

from datahub_project import ops, settings_page

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("metrics", ops.metrics, name="metrics"),
    path("settings/", settings_page.settings_page, name="settings"),
]
