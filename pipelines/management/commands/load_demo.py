from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from pipelines.files import read_definition_file
from pipelines.services import save_definition


class Command(BaseCommand):
    help = "Load the demo pipelines (idempotent: unchanged demos make no new revision)."

    def handle(self, *args, **options):
        for path in sorted(Path(settings.DATAHUB_DEMO_PIPELINES_DIR).glob("*.json")):
            pipeline = save_definition(read_definition_file(str(path)), message="demo")
            self.stdout.write(f"{pipeline.code}: revision {pipeline.current_revision.number}")
