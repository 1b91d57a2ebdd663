"""Signals other apps listen to (gates, notifications), and the reaper's schedule.

``step_paused(run, step_key, info)`` is sent when a run pauses at a step, inside the transaction that saves
the pause (after the step's held records are in storage): the gates app turns it into a gate request, which
so commits with the pause or not at all. A listener that raises undoes the pause and fails the run; side
effects outside the database (notices) belong in ``transaction.on_commit``. ``run_ended(run)`` is sent
after a run reached COMPLETED, FAILED or CANCELLED. Both are sent outside the executor, from runs.services.
"""

from __future__ import annotations

from django.db.models.signals import post_migrate
from django.dispatch import Signal, receiver

from runs import retention  # noqa: F401  (connects post_migrate: the retention schedule)

step_paused = Signal()
run_ended = Signal()

REAPER = "datahub: resume runs whose worker died"
_OLD_REAPER = "datahub: fail runs whose worker died"  # its name before runs were resumed


@receiver(post_migrate)
def ensure_reaper_schedule(sender, **kwargs) -> None:
    if getattr(sender, "name", "") != "runs":
        return
    from django_q.models import Schedule

    Schedule.objects.filter(name=_OLD_REAPER).delete()
    Schedule.objects.update_or_create(
        name=REAPER,
        defaults={"func": "runs.tasks.reap_stale_runs", "schedule_type": Schedule.MINUTES, "minutes": 1,
                  "repeats": -1},
    )
