"""SCHEDULE triggers: django-q2 schedules that follow their pipeline, and the missed-run policy."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from pipelines.models import Pipeline
from pipelines.services import save_definition
from runs import schedules, services
from runs.models import Run, RunStatus, ScheduleState
from runs.schedules import Spec

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 1, 0, 30, tzinfo=UTC)


def definition(code="tick", disabled=False, **trigger):
    trigger.setdefault("cron", "0 * * * *")
    trigger = {k: v for k, v in trigger.items() if v is not None}
    return {
        "version": 1, "code": code, "name": code,
        "steps": [
            {"key": "clock", "type": "TRIGGER", "disabled": disabled, "config": {"type": "SCHEDULE", **trigger}},
            {"key": "src", "type": "EXTRACT", "adapterCode": "inMemory", "config": {"data": [{"n": 1}]}},
            {"key": "out", "type": "SINK", "adapterCode": "records", "config": {}},
        ],
    }


@pytest.fixture
def save(django_capture_on_commit_callbacks):
    """save_definition with its after-commit work (the schedule sync) done."""

    def save(d):
        with django_capture_on_commit_callbacks(execute=True):
            return save_definition(d)

    return save


def schedule_of(pipeline):
    return Schedule.objects.get(func="runs.tasks.run_scheduled", args=repr((pipeline.pk, "clock")))


def test_it_creates_one_django_q_schedule_per_trigger_at_the_next_occurrence_in_its_time_zone(save):
    before = timezone.now()
    p = save(definition(cron="0 6 * * *", timezone="Europe/Berlin"))
    s = schedule_of(p)
    assert (s.schedule_type, s.cron, s.repeats, s.intended_date_kwarg) == (Schedule.CRON, "0 6 * * *", -1, "planned")
    local = s.next_run.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (6, 0) and before < s.next_run <= before + timedelta(days=1)
    state = ScheduleState.objects.get(pipeline=p)
    assert state.trigger_key == "clock" and state.handled_until >= before


def test_it_maps_an_interval_to_minutes_and_plans_it_to_the_second(save):
    p = save(definition(cron=None, intervalSec=150))
    s = schedule_of(p)
    state = ScheduleState.objects.get(pipeline=p)
    assert (s.schedule_type, s.minutes) == (Schedule.MINUTES, 2)
    assert s.next_run == state.anchor + timedelta(seconds=150)


def test_it_follows_the_pipeline_when_edited_disabled_re_enabled_and_deleted(save, django_capture_on_commit_callbacks):
    p = save(definition())
    first = schedule_of(p)
    save(dict(definition(), name="renamed"))  # an unrelated edit keeps the schedule and its plan
    assert schedule_of(p).pk == first.pk and schedule_of(p).next_run == first.next_run
    save(definition(cron="*/5 * * * *"))
    assert schedule_of(p).pk == first.pk and schedule_of(p).cron == "*/5 * * * *"
    save(definition(cron="*/5 * * * *", disabled=True))
    assert not Schedule.objects.filter(func=schedules.FUNC).exists() and not ScheduleState.objects.exists()
    save(definition(cron="*/5 * * * *"))
    assert schedule_of(p)
    with django_capture_on_commit_callbacks(execute=True):
        p.enabled = False
        p.save()
    assert not Schedule.objects.filter(func=schedules.FUNC).exists()
    with django_capture_on_commit_callbacks(execute=True):
        p.enabled = True
        p.save()
    assert schedule_of(p)
    without = definition()
    without["steps"][0]["config"] = {"type": "MANUAL"}
    save(without)
    assert not Schedule.objects.filter(func=schedules.FUNC).exists()
    save(definition())
    Pipeline.objects.get(pk=p.pk).delete()
    assert not Schedule.objects.filter(func=schedules.FUNC).exists()


def test_it_leaves_other_schedules_alone(save):
    reaper = Schedule.objects.create(func="runs.tasks.reap_stale_runs", schedule_type=Schedule.MINUTES, minutes=1)
    p = save(definition())
    save(definition(disabled=True))
    assert Schedule.objects.filter(pk=reaper.pk).exists()
    assert not Schedule.objects.filter(args__startswith=f"({p.pk}, ").exists()


@pytest.mark.parametrize("trigger, message", [
    ({"cron": "* * * * * *"}, "not a valid 5-field cron"),
    ({"cron": "61 * * * *"}, "not a valid 5-field cron"),
    ({"cron": "every hour"}, "not a valid 5-field cron"),
    ({"cron": "0 * * * *", "intervalSec": 60}, "exactly one of cron and intervalSec"),
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"catchUp": "SOME"}, "must be one of ALL, LAST, NONE"),
])
def test_it_refuses_to_save_a_trigger_it_cannot_schedule_and_says_why(save, trigger, message):
    from pipelines.errors import DefinitionError

    with pytest.raises(DefinitionError) as err:
        save(definition(**trigger))
    assert [(p.step, message in p.message) for p in err.value.problems] == [("clock", True)]
    assert not Schedule.objects.filter(func=schedules.FUNC).exists()


def test_it_schedules_nothing_for_a_stored_trigger_it_cannot_schedule_and_says_why(save):
    from pipelines.models import PipelineRevision

    p = save(definition())
    bad = p.current_revision.definition
    bad["steps"][0]["config"]["cron"] = "61 * * * *"
    PipelineRevision.objects.filter(pk=p.current_revision.pk).update(definition=bad)
    problems = schedules.sync_pipeline(p.pk)
    assert len(problems) == 1 and "not a valid 5-field cron" in problems[0] and problems[0].startswith("step 'clock': ")


@pytest.mark.parametrize("interval", [0, "60", True, None])
def test_it_refuses_an_interval_that_is_not_a_positive_whole_number(interval):
    d = definition(cron=None)
    d["steps"][0]["config"]["intervalSec"] = interval
    specs, problems = schedules.specs_of(d)
    assert specs == [] and len(problems) == 1


def test_it_computes_occurrences_backwards_so_a_long_downtime_is_cheap():
    spec = Spec("clock", "* * * * *", None, "UTC", "LAST")
    found = spec.occurrences(T0, T0 - timedelta(days=365), T0, 11)
    assert len(found) == 11 and found[-1] == T0 and found[0] == T0 - timedelta(minutes=10)
    interval = Spec("clock", None, 90, "UTC", "LAST")
    assert interval.occurrences(T0, T0, T0 + timedelta(seconds=300), 10) == [
        T0 + timedelta(seconds=s) for s in (90, 180, 270)]
    assert interval.next_after(T0, T0 + timedelta(seconds=100)) == T0 + timedelta(seconds=180)


def pretend(pipeline, *, handled_until, anchor=None):
    """The state as if the last tick was at ``handled_until`` (the workers were down since)."""
    ScheduleState.objects.filter(pipeline=pipeline).update(handled_until=handled_until, anchor=anchor or handled_until)


def test_it_starts_a_run_for_an_on_time_occurrence_once_however_many_ticks_arrive(save):
    p = save(definition())
    pretend(p, handled_until=T0 - timedelta(minutes=31))
    now = T0 - timedelta(minutes=30) + timedelta(seconds=20)  # 00:00:20, twenty seconds late
    assert schedules.fire(p.pk, "clock", now=now).startswith("started run")
    assert schedules.fire(p.pk, "clock", now=now) == "nothing due"
    run = Run.objects.get()
    assert (run.trigger, run.seed_step) == ("schedule", "")
    assert schedule_of(p).next_run == T0 + timedelta(minutes=30)


def test_it_skips_and_logs_when_a_run_is_already_active(save, caplog):
    p = save(definition())
    services.create_run(p)
    pretend(p, handled_until=T0 - timedelta(minutes=31))
    assert schedules.fire(p.pk, "clock", now=T0 - timedelta(minutes=29)) == "skipped: a run is active"
    assert Run.objects.count() == 1
    assert "already has an active run" in caplog.text


@pytest.mark.parametrize("policy, runs", [("LAST", 1), ("NONE", 0), (None, 1)])
def test_it_starts_at_most_one_run_after_ten_missed_occurrences(save, policy, runs, caplog):
    p = save(definition(**({"catchUp": policy} if policy else {})))
    pretend(p, handled_until=T0 - timedelta(hours=10, minutes=1))  # 14:29 the day before; now 00:30
    schedules.fire(p.pk, "clock", now=T0)
    assert Run.objects.count() == runs
    assert "10 occurrence(s) missed" in caplog.text
    # The window is handled: the next tick starts nothing more.
    assert schedules.fire(p.pk, "clock", now=T0 + timedelta(seconds=30)) == "nothing due"
    assert Run.objects.count() == runs


def test_it_runs_an_on_time_occurrence_after_downtime_even_with_policy_none(save):
    p = save(definition(catchUp="NONE"))
    pretend(p, handled_until=T0 - timedelta(hours=10, minutes=1))
    schedules.fire(p.pk, "clock", now=T0 - timedelta(minutes=30) + timedelta(seconds=5))
    assert Run.objects.count() == 1


def test_it_catches_up_all_missed_occurrences_one_run_after_another_capped_at_ten(save):
    p = save(definition(catchUp="ALL"))
    pretend(p, handled_until=T0 - timedelta(hours=15, minutes=1))  # 15 missed
    assert schedules.fire(p.pk, "clock", now=T0) == "10 run(s) owed, 1 started"
    assert Run.objects.count() == 1 and ScheduleState.objects.get().backlog == 9
    for _ in range(12):
        pending = Run.objects.filter(status=RunStatus.PENDING).first()
        if pending is None:
            break
        assert Run.objects.filter(status__in=["PENDING", "RUNNING"]).count() == 1  # never a storm
        services.run_now(pending)  # its end starts the next one
    assert Run.objects.count() == 10
    assert set(Run.objects.values_list("status", flat=True)) == {RunStatus.COMPLETED}
    assert ScheduleState.objects.get().backlog == 0


def test_it_does_not_catch_up_the_time_a_pipeline_was_disabled(save, django_capture_on_commit_callbacks):
    p = save(definition(catchUp="ALL"))
    with django_capture_on_commit_callbacks(execute=True):
        p.enabled = False
        p.save()
    # Hours later it is enabled again: the schedule counts from now, whatever the policy.
    with django_capture_on_commit_callbacks(execute=True):
        p.enabled = True
        p.save()
    state = ScheduleState.objects.get()
    assert schedules.fire(p.pk, "clock", now=state.handled_until + timedelta(seconds=1)) == "nothing due"
    assert not Run.objects.exists()


def test_it_drops_a_stale_schedule_when_it_fires(save):
    p = save(definition())
    stale = schedule_of(p)
    Pipeline.objects.filter(pk=p.pk).update(enabled=False)  # an update() sends no signal
    assert schedules.fire(p.pk, "clock") == "re-synced"
    assert not Schedule.objects.filter(pk=stale.pk).exists()
    assert not Run.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_runs_through_django_qs_own_scheduler_after_downtime(monkeypatch):
    """The real path: django-q2's scheduler finds a schedule whose time passed while the cluster was down,
    calls runs.tasks.run_scheduled once (sync mode), and one run executes."""
    from django_q.conf import Conf
    from django_q.scheduler import scheduler

    monkeypatch.setattr(Conf, "SYNC", True)
    p = save_definition(definition(cron="* * * * *"))  # transaction=True: the sync ran on commit
    now = timezone.now()
    Schedule.objects.filter(pk=schedule_of(p).pk).update(next_run=now - timedelta(minutes=10))
    pretend(p, handled_until=now - timedelta(minutes=10, seconds=30))
    scheduler()
    runs = list(Run.objects.all())
    assert len(runs) == 1 and runs[0].status == RunStatus.COMPLETED and runs[0].trigger == "schedule"
    assert schedule_of(p).next_run > now
    scheduler()  # nothing is due now
    assert Run.objects.count() == 1
