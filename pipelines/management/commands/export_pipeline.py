import json

from django.core.management.base import BaseCommand, CommandError

from pipelines.errors import DefinitionError
from pipelines.models import Pipeline
from pipelines.services import get_revision


class Command(BaseCommand):
    help = "Print a pipeline's definition JSON (the current revision, or --revision N)."

    def add_arguments(self, parser):
        parser.add_argument("code")
        parser.add_argument("--revision", type=int)

    def handle(self, *args, **options):
        pipeline = Pipeline.objects.filter(code=options["code"]).first()
        if pipeline is None:
            known = ", ".join(Pipeline.objects.values_list("code", flat=True)[:20]) or "none"
            raise CommandError(f"no pipeline '{options['code']}' (known: {known})")
        try:
            revision = get_revision(pipeline, options["revision"])
        except DefinitionError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(revision.definition, indent=2, ensure_ascii=False))
