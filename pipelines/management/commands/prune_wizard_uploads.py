"""Delete files uploaded to a wizard that no pipeline reads and that are older than --days (default 7).

A wizard saves its upload before the pipeline exists (the preview reads it from there); a wizard left
unfinished leaves its file behind. A file that any pipeline revision names (``fileId`` or ``storagePath``,
at any depth of a step's config) is kept whatever its age: a revision can be restored.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand
from django.utils import timezone

from pipelines.models import PipelineRevision
from pipelines.wizards.import_pages import UPLOAD_FOLDER

FILE_KEYS = ("fileId", "storagePath")


def referenced_files() -> set[str]:
    names: set[str] = set()
    for definition in PipelineRevision.objects.values_list("definition", flat=True).iterator():
        stack = [definition]
        while stack:
            value = stack.pop()
            if isinstance(value, dict):
                for key, item in value.items():
                    if key in FILE_KEYS and isinstance(item, str):
                        names.add(item)
                    else:
                        stack.append(item)
            elif isinstance(value, list):
                stack.extend(value)
    return names


class Command(BaseCommand):
    help = "Delete wizard uploads that no pipeline revision reads and that are older than --days."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=7, help="keep unreferenced uploads younger than this")
        parser.add_argument("--dry-run", action="store_true", help="only list what would be deleted")

    def handle(self, *args, **options):
        if not default_storage.exists(UPLOAD_FOLDER):
            self.stdout.write("no wizard uploads")
            return
        keep = referenced_files()
        cutoff = timezone.now() - timedelta(days=options["days"])
        deleted = kept = 0
        folders, _ = default_storage.listdir(UPLOAD_FOLDER)
        for folder in sorted(folders):
            _, files = default_storage.listdir(f"{UPLOAD_FOLDER}/{folder}")
            for name in sorted(files):
                path = f"{UPLOAD_FOLDER}/{folder}/{name}"
                if path in keep or default_storage.get_modified_time(path) >= cutoff:
                    kept += 1
                    continue
                deleted += 1
                self.stdout.write(f"{'would delete' if options['dry_run'] else 'deleted'} {path}")
                if not options["dry_run"]:
                    default_storage.delete(path)
        self.stdout.write(f"{deleted} upload(s) {'to delete' if options['dry_run'] else 'deleted'}, {kept} kept")
