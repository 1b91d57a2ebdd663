"""manage.py poll_files: look at the folders of FILE triggers now (see runs.file_triggers)."""

from django.core.management.base import BaseCommand, CommandError

from pipelines.models import Pipeline
from runs import file_triggers


class Command(BaseCommand):
    help = ("Poll the FILE triggers of the given pipelines (default: every enabled pipeline) once, starting a run "
            "per new or changed file, as their schedules do every pollIntervalSec.")

    def add_arguments(self, parser):
        parser.add_argument("codes", nargs="*", metavar="CODE", help="pipeline codes")

    def handle(self, *args, codes, **options):
        pipelines = Pipeline.objects.filter(enabled=True).select_related("current_revision")
        if codes:
            pipelines = pipelines.filter(code__in=codes)
            missing = sorted(set(codes) - set(pipelines.values_list("code", flat=True)))
            if missing:
                raise CommandError(f"no enabled pipeline {', '.join(missing)}")
        failed = False
        for pipeline in pipelines:
            if pipeline.current_revision is None:
                continue
            for watch in file_triggers.watches_of(pipeline.current_revision.definition)[0]:
                result = file_triggers.poll(pipeline.pk, watch.key)
                failed = failed or bool(result.error)
                self.stdout.write(f"{pipeline.code} / {watch.key}: {result}")
        if failed:
            raise CommandError("some FILE triggers could not be polled (see above)")
