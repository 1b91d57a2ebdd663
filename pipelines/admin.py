from django import forms
from django.contrib import admin

from pipelines import access
from pipelines.models import Connection, Edge, Pipeline, PipelineReview, PipelineRevision, Secret, Step
from pipelines.secrets import set_secret_value


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    fields = ("position", "key", "type", "adapter_code", "disabled", "retries", "timeout_ms", "continue_on_error")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


class EdgeInline(admin.TabularInline):
    model = Edge
    extra = 0
    readonly_fields = ("position", "from_key", "to_key", "branch", "dependency_only")
    can_delete = False


class OwnedAdmin(admin.ModelAdmin):
    """Staff see in the admin only what they may use (owners and teams, pipelines.access)."""

    filter_horizontal = ("owners", "teams")

    def get_queryset(self, request):
        return access.visible(request.user, super().get_queryset(request))


@admin.register(Pipeline)
class PipelineAdmin(OwnedAdmin):
    list_display = ("code", "name", "enabled", "allow_concurrent_runs", "requires_review", "updated_at")
    list_filter = ("enabled",)
    search_fields = ("code", "name", "description")
    readonly_fields = ("current_revision", "created_at", "updated_at")
    inlines = [StepInline, EdgeInline]


@admin.register(PipelineRevision)
class PipelineRevisionAdmin(admin.ModelAdmin):
    list_display = ("pipeline", "number", "created_by", "created_at", "message")
    list_filter = ("pipeline",)
    readonly_fields = ("pipeline", "number", "definition", "message", "created_by", "created_at")

    def has_change_permission(self, request, obj=None):
        return False  # revisions are immutable


@admin.register(PipelineReview)
class PipelineReviewAdmin(admin.ModelAdmin):
    """Submissions, to look at: deciding goes through the review pages and the API (pipelines.reviews), so a
    submission is decided once, by someone other than its author, and the audit trail has it."""

    list_display = ("pipeline", "pk", "status", "author", "submitted_at", "decided_by", "decided_at", "message")
    list_filter = ("status", "pipeline")
    readonly_fields = ("pipeline", "author", "definition", "base_revision", "message", "status", "submitted_at",
                       "decided_by", "decided_at", "comment", "revision")

    def get_queryset(self, request):
        return access.visible(request.user, super().get_queryset(request), via="pipeline")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class SecretForm(forms.ModelForm):
    value = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only: leave empty to keep the current value. 'env:NAME' reads an environment variable.",
    )

    class Meta:
        model = Secret
        fields = ("code", "description", "owners", "teams")

    def save(self, commit=True):
        secret = super().save(commit=False)
        if self.cleaned_data.get("value"):
            set_secret_value(secret, self.cleaned_data["value"])
        if commit:
            secret.save()
        return secret


@admin.register(Secret)
class SecretAdmin(OwnedAdmin):
    form = SecretForm
    list_display = ("code", "description", "is_set", "env_name", "updated_at")
    search_fields = ("code", "description")


@admin.register(Connection)
class ConnectionAdmin(OwnedAdmin):
    list_display = ("code", "name", "type", "updated_at")
    list_filter = ("type",)
    search_fields = ("code", "name")
