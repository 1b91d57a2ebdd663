from django.core.management.base import BaseCommand, CommandError

from pipelines.errors import DefinitionError
from pipelines.files import read_definition_file
from pipelines.services import save_definition


class Command(BaseCommand):
    help = "Import (create or update) a pipeline from a definition JSON file; saves a revision if it changed."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="+", help="definition JSON file(s)")
        parser.add_argument("--code", help="pipeline code (default: the definition's code, else the file name)")

    def handle(self, *args, **options):
        if options["code"] and len(options["file"]) > 1:
            raise CommandError("--code can only be used with a single file")
        for filename in options["file"]:
            try:
                data = read_definition_file(filename)
                code = options["code"] or (data.get("code") if isinstance(data, dict) else None) or _code_from(filename)
                pipeline = save_definition(data, code=code, message=f"imported from {filename}")
            except DefinitionError as exc:
                raise CommandError(f"{filename} is not a valid pipeline:\n" + "\n".join(
                    f"  - {p}" for p in exc.problems)) from None
            self.stdout.write(f"{pipeline.code}: revision {pipeline.current_revision.number}")


def _code_from(filename: str) -> str:
    import re
    from pathlib import Path

    return re.sub(r"[^a-z0-9_-]+", "-", Path(filename).stem.lower()).strip("-") or "pipeline"
