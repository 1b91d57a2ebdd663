"""The REST API under /api/: pipelines, runs, message consumers, the adapter catalogue, the OpenAPI schema and its page,
and the page where a person manages their API token.

The documentation page is Swagger UI from drf-spectacular-sidecar (served from our static files). There
is no Redoc page: drf-spectacular's Redoc template loads Google Fonts.
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from pipelines import api as pipelines_api
from pipelines import credential_api, review_api, tokens
from runs import api as runs_api
from runs import log_api
from runs.consumers import api as consumers_api

urlpatterns = [
    path("pipelines/", pipelines_api.pipelines, name="api-pipelines"),
    path("pipelines/validate/", pipelines_api.validate, name="api-pipeline-validate"),
    path("pipelines/import/", pipelines_api.import_, name="api-pipeline-import"),
    path("pipelines/<str:code>/", pipelines_api.pipeline, name="api-pipeline"),
    path("pipelines/<str:code>/export/", pipelines_api.export, name="api-pipeline-export"),
    path("pipelines/<str:code>/revisions/", pipelines_api.revisions, name="api-pipeline-revisions"),
    path("pipelines/<str:code>/revisions/<int:number>/", pipelines_api.revision, name="api-pipeline-revision"),
    path("pipelines/<str:code>/revisions/<int:number>/restore/", pipelines_api.restore,
         name="api-pipeline-restore"),
    path("pipelines/<str:code>/reviews/", review_api.pipeline_reviews, name="api-pipeline-reviews"),
    path("reviews/", review_api.review_list, name="api-reviews"),
    path("reviews/<int:review_id>/", review_api.review, name="api-review"),
    path("reviews/<int:review_id>/approve/", review_api.approve, name="api-review-approve"),
    path("reviews/<int:review_id>/reject/", review_api.reject, name="api-review-reject"),
    path("runs/", runs_api.runs, name="api-runs"),
    path("runs/<int:run_id>/", runs_api.run, name="api-run"),
    path("runs/<int:run_id>/cancel/", runs_api.cancel, name="api-run-cancel"),
    path("runs/<int:run_id>/rerun/", runs_api.rerun, name="api-run-rerun"),
    path("runs/<int:run_id>/record-errors/", runs_api.record_errors, name="api-run-record-errors"),
    path("runs/<int:run_id>/record-errors/replay/", runs_api.replay, name="api-run-replay"),
    path("connections/", credential_api.connections, name="api-connections"),
    path("connections/<str:code>/", credential_api.connection, name="api-connection"),
    path("connections/<str:code>/test/", credential_api.connection_test, name="api-connection-test"),
    path("secrets/", credential_api.secrets, name="api-secrets"),
    path("secrets/<str:code>/", credential_api.secret, name="api-secret"),
    path("consumers/", consumers_api.consumers, name="api-consumers"),
    path("consumers/<int:consumer_id>/", consumers_api.consumer, name="api-consumer"),
    path("consumers/<int:consumer_id>/dead-letters/", consumers_api.dead_letters, name="api-consumer-dead-letters"),
    path("consumers/<int:consumer_id>/start/", consumers_api.start, name="api-consumer-start"),
    path("consumers/<int:consumer_id>/stop/", consumers_api.stop, name="api-consumer-stop"),
    path("logs/", log_api.logs, name="api-logs"),
    path("adapters/", pipelines_api.adapters, name="api-adapters"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("tokens/", tokens.tokens, name="api-tokens"),
]
