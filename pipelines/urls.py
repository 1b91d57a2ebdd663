"""The pipeline pages: list, create, import, and the editor with its one-change-at-a-time actions;
the connection and secret pages."""

from django.urls import path

from pipelines import credential_views, views

urlpatterns = [
    path("pipelines/", views.pipeline_list, name="pipeline-list"),
    path("pipelines/new/", views.pipeline_create, name="pipeline-create"),
    path("pipelines/import/", views.pipeline_import, name="pipeline-import"),
    path("pipelines/<slug:code>/", views.pipeline_editor, name="pipeline-editor"),
    path("pipelines/<slug:code>/toggle/", views.pipeline_toggle, name="pipeline-toggle"),
    path("pipelines/<slug:code>/export/", views.pipeline_export, name="pipeline-export"),
    path("pipelines/<slug:code>/duplicate/", views.pipeline_duplicate, name="pipeline-duplicate"),
    path("pipelines/<slug:code>/json/", views.pipeline_json, name="pipeline-json"),
    path("pipelines/<slug:code>/settings/", views.pipeline_settings, name="pipeline-settings"),
    path("pipelines/<slug:code>/publish/", views.pipeline_publish, name="pipeline-publish"),
    path("pipelines/<slug:code>/draft/discard/", views.draft_discard, name="draft-discard"),
    path("pipelines/<slug:code>/draft/settings/", views.settings_autosave, name="settings-autosave"),
    path("pipelines/<slug:code>/draft/steps/<str:key>/", views.step_autosave, name="step-autosave"),
    path("pipelines/<slug:code>/new-step/", views.step_new, name="step-new"),
    path("pipelines/<slug:code>/steps/<str:key>/", views.step_save, name="step-save"),
    path("pipelines/<slug:code>/steps/<str:key>/move/", views.step_move, name="step-move"),
    path("pipelines/<slug:code>/steps/<str:key>/remove/", views.step_remove, name="step-remove"),
    path("pipelines/<slug:code>/edges/", views.edge_add, name="edge-add"),
    path("pipelines/<slug:code>/edges/clear/", views.edges_clear, name="edges-clear"),
    path("pipelines/<slug:code>/edges/<int:index>/remove/", views.edge_remove, name="edge-remove"),
    path("pipelines/<slug:code>/revisions/<int:number>/", views.revision_detail, name="revision-detail"),
    path("pipelines/<slug:code>/revisions/<int:number>/restore/", views.revision_restore, name="revision-restore"),
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
