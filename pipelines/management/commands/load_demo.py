import sqlite3
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from pipelines.files import read_definition_file
from pipelines.models import Connection
from pipelines.services import save_definition

DEMO_TABLE = """
CREATE TABLE IF NOT EXISTS products (
    sku TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    price_cents INTEGER,
    stock INTEGER,
    updated_at TEXT DEFAULT CURRENT_TIMESTAMP
)
"""


class Command(BaseCommand):
    help = "Load the demo pipelines and the demo SQLite database they write to (idempotent)."

    def handle(self, *args, **options):
        self._demo_database()
        for path in sorted(Path(settings.DATAHUB_DEMO_PIPELINES_DIR).glob("*.json")):
            pipeline = save_definition(read_definition_file(str(path)), message="demo")
            self.stdout.write(f"{pipeline.code}: revision {pipeline.current_revision.number}")

    def _demo_database(self) -> None:
        """A SQLite file inside the allowed folders, its products table, and the connection naming it."""
        folder = Path(settings.DATAHUB_SQLITE_DIRS[0])
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "demo.sqlite3"
        with sqlite3.connect(path) as db:
            db.execute(DEMO_TABLE)
        Connection.objects.update_or_create(
            code="demo-sqlite",
            defaults={"name": "Demo SQLite database", "type": "SQLITE", "config": {"path": str(path)}},
        )
