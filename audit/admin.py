from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read only: the trail is written by Datahub and pruned by retention, never edited by hand."""

    list_display = ("at", "actor_name", "ip", "action", "target")
    list_filter = ("action",)
    search_fields = ("actor_name", "target", "ip")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
