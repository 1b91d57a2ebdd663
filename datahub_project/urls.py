"""The URL map: pages of each app, the REST API under /api/, GraphQL at /graphql/, webhook triggers under /hooks/."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("datahub_project.api_urls")),
    path("graphql/", include("datahub_project.graphql_urls")),
    path("hooks/", include("runs.webhook_urls")),
    path("", include("datahub_project.ops_urls")),
    path("", include("runs.urls")),
    path("", include("runs.consumers.urls")),
    path("", include("pipelines.urls")),
    path("", include("gates.urls")),
    path("", include("audit.urls")),
]

handler404 = "datahub_project.error_views.not_found"
handler500 = "datahub_project.error_views.server_error"
