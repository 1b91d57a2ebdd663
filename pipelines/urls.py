"""The pipeline pages: list, create, import, and the editor with its one-change-at-a-time actions;
the connection and secret pages."""

from django.urls import path

from pipelines import credential_views, review_views
from pipelines.views import (
    connections,
    creating,
    json_editor,
    listing,
    publishing,
    revisions,
    settings,
    steps,
    workspace,
)
from pipelines.wizards import views as wizards

urlpatterns = [
    path("pipelines/", listing.pipeline_list, name="pipeline-list"),
    path("pipelines/new/", creating.pipeline_create, name="pipeline-create"),
    path("pipelines/import/", creating.pipeline_import, name="pipeline-import"),
    path("wizards/", wizards.wizard_start, name="wizard-start"),
    path("wizards/new/", wizards.wizard_new, name="wizard-new"),
    path("wizards/<str:wid>/cancel/", wizards.wizard_cancel, name="wizard-cancel"),
    path("wizards/<str:wid>/<slug:step>/", wizards.wizard_step, name="wizard-step"),
    path("pipelines/<slug:code>/", workspace.pipeline_editor, name="pipeline-editor"),
    path("pipelines/<slug:code>/toggle/", listing.pipeline_toggle, name="pipeline-toggle"),
    path("pipelines/<slug:code>/export/", listing.pipeline_export, name="pipeline-export"),
    path("pipelines/<slug:code>/duplicate/", creating.pipeline_duplicate, name="pipeline-duplicate"),
    path("pipelines/<slug:code>/json/", json_editor.pipeline_json, name="pipeline-json"),
    path("pipelines/<slug:code>/settings/", settings.pipeline_settings, name="pipeline-settings"),
    path("pipelines/<slug:code>/publish/", publishing.pipeline_publish, name="pipeline-publish"),
    path("pipelines/<slug:code>/draft/discard/", publishing.draft_discard, name="draft-discard"),
    path("pipelines/<slug:code>/draft/settings/", settings.settings_autosave, name="settings-autosave"),
    path("pipelines/<slug:code>/draft/steps/<str:key>/", steps.step_autosave, name="step-autosave"),
    path("pipelines/<slug:code>/new-step/", steps.step_new, name="step-new"),
    path("pipelines/<slug:code>/steps/<str:key>/", steps.step_save, name="step-save"),
    path("pipelines/<slug:code>/steps/<str:key>/move/", steps.step_move, name="step-move"),
    path("pipelines/<slug:code>/steps/<str:key>/remove/", steps.step_remove, name="step-remove"),
    path("pipelines/<slug:code>/edges/", connections.edge_add, name="edge-add"),
    path("pipelines/<slug:code>/edges/clear/", connections.edges_clear, name="edges-clear"),
    path("pipelines/<slug:code>/edges/<int:index>/remove/", connections.edge_remove, name="edge-remove"),
    path("pipelines/<slug:code>/revisions/<int:number>/", revisions.revision_detail, name="revision-detail"),
    path("pipelines/<slug:code>/revisions/<int:number>/restore/", revisions.revision_restore, name="revision-restore"),
    path("pipelines/<slug:code>/reviews/", review_views.review_history, name="review-history"),
    path("reviews/", review_views.review_queue, name="review-queue"),
    path("reviews/<int:review_id>/", review_views.review_detail, name="review-detail"),
    path("reviews/<int:review_id>/approve/", review_views.review_approve, name="review-approve"),
    path("reviews/<int:review_id>/reject/", review_views.review_reject, name="review-reject"),
    path("connections/", credential_views.connection_list, name="connection-list"),
    path("connections/new/", credential_views.connection_new, name="connection-new"),
    path("connections/<slug:code>/", credential_views.connection_edit, name="connection-edit"),
    path("connections/<slug:code>/test/", credential_views.connection_test, name="connection-test"),
    path("connections/<slug:code>/delete/", credential_views.connection_delete, name="connection-delete"),
    path("secrets/", credential_views.secret_list, name="secret-list"),
    path("secrets/new/", credential_views.secret_new, name="secret-new"),
    path("secrets/<slug:code>/", credential_views.secret_edit, name="secret-edit"),
    path("secrets/<slug:code>/delete/", credential_views.secret_delete, name="secret-delete"),
]
