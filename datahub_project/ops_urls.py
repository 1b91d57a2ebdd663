"""Operations endpoints at the root: /healthz (load balancers, no login) and /metrics (Prometheus)."""

from django.urls import path

from datahub_project import ops

urlpatterns = [
    path("healthz", ops.healthz, name="healthz"),
    path("metrics", ops.metrics, name="metrics"),
]
