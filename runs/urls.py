"""The run pages: the dashboard at /, the run list and a run's live page, and the actions that start runs."""

from django.urls import path

from runs import analytics_views, log_views, tester_views, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("runs/", views.run_list, name="run-list"),
    path("analytics/", analytics_views.analytics_page, name="analytics"),
    path("logs/", log_views.log_explorer, name="logs"),
    path("runs/<int:pk>/log/", log_views.run_log, name="run-log"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<int:pk>/rerun/", views.run_rerun, name="run-rerun"),
    path("runs/<int:pk>/replay/", views.run_replay, name="run-replay"),
    path("pipelines/<slug:code>/run/", views.run_start, name="run-start"),
    path("pipelines/<slug:code>/preview/", views.pipeline_preview, name="pipeline-preview"),
    path("pipelines/<slug:code>/steps/<str:key>/test/", tester_views.step_test, name="step-test"),
]
