"""manage.py prune_runs: delete runs, logs and record errors past their retention (see runs.retention)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runs import retention


class Command(BaseCommand):
    help = ("Delete ended runs older than DATAHUB_KEEP_RUNS_DAYS (unless they still hold record errors), record "
            "errors older than DATAHUB_KEEP_RECORD_ERRORS_DAYS, and old task results and webhook keys. "
            "PENDING, RUNNING and PAUSED runs are never touched.")

    def add_arguments(self, parser):
        parser.add_argument("--keep-runs-days", type=int, default=None,
                            help=f"default: DATAHUB_KEEP_RUNS_DAYS ({settings.DATAHUB_KEEP_RUNS_DAYS}); 0 keeps them")
        parser.add_argument("--keep-record-errors-days", type=int, default=None,
                            help="default: DATAHUB_KEEP_RECORD_ERRORS_DAYS "
                            f"({settings.DATAHUB_KEEP_RECORD_ERRORS_DAYS}); 0 keeps them")
        parser.add_argument("--chunk-size", type=int, default=retention.CHUNK_SIZE)
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")

    def handle(self, *args, keep_runs_days, keep_record_errors_days, chunk_size, dry_run, **options):
        if any(d is not None and d < 0 for d in (keep_runs_days, keep_record_errors_days)):
            raise CommandError("the number of days to keep must not be negative (0 keeps for ever)")
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        counts = retention.prune(keep_runs_days=keep_runs_days, keep_record_errors_days=keep_record_errors_days,
                                 chunk_size=chunk_size, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(f"{verb}: " + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items()))
