"""Gate pages under /gates/ and the gate REST API under /api/gates/ (this module is mounted at the root)."""

from django.urls import path

from gates import action_views, api, views

app_name = "gates"

urlpatterns = [
    path("gates/", views.gate_list, name="list"),
    # The one-click Approve/Reject links of gate emails (gates.action_links).
    path("gates/act/<str:token>/", action_views.act, name="act"),
    path("gates/<int:run_id>/<str:step_key>/", views.review, name="review"),
    path("gates/<int:run_id>/<str:step_key>/approve/", views.approve, name="approve"),
    path("gates/<int:run_id>/<str:step_key>/reject/", views.reject, name="reject"),
    path("api/gates/", api.pending, name="api-pending"),
    path("api/gates/<int:run_id>/<str:step_key>/", api.gate, name="api-gate"),
    path("api/gates/<int:run_id>/<str:step_key>/approve/", api.approve, name="api-approve"),
    path("api/gates/<int:run_id>/<str:step_key>/reject/", api.reject, name="api-reject"),
]
