from django.contrib import admin

from gates.models import GateRequest


@admin.register(GateRequest)
class GateRequestAdmin(admin.ModelAdmin):
    """Read-only: decisions are made on the review page, the API or GraphQL, where the rules are kept."""

    list_display = ("id", "run", "step_key", "approval_type", "status", "record_count", "created_at",
                    "decided_by", "decided_at")
    list_filter = ("status", "approval_type")
    search_fields = ("step_key", "run__pipeline__code", "reason")
    readonly_fields = [f.name for f in GateRequest._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
