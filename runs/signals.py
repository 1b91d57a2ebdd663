"""Schedules the reaper once the django_q tables exist (idempotent; runs after every migrate)."""

from __future__ import annotations

from django.db.models.signals import post_migrate
from django.dispatch import receiver

REAPER = "datahub: fail runs whose worker died"


@receiver(post_migrate)
def ensure_reaper_schedule(sender, **kwargs) -> None:
    if getattr(sender, "name", "") != "runs":
        return
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=REAPER,
        defaults={"func": "runs.tasks.reap_stale_runs", "schedule_type": Schedule.MINUTES, "minutes": 1,
                  "repeats": -1},
    )
