from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One thing someone did. Values of secrets are never recorded, only that they changed.

    ``actor_name`` keeps the user name when the user is deleted later; "system" for the workers, timers
    and commands. ``ip`` is the client's address (behind DATAHUB_PROXY_COUNT proxies, the forwarded one).
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_name = models.CharField(max_length=150, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=50, db_index=True)
    target = models.CharField(max_length=300, blank=True, default="", db_index=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        permissions = [("view_audit", "Can read and export the audit trail")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.target}"
