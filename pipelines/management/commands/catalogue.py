from django.core.management.base import BaseCommand

from pipelines.catalogue import render_markdown


class Command(BaseCommand):
    help = "Print the catalogue of built-in step types, operators and adapters as Markdown (docs/catalogue.md)."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="include custom (non built-in) plugins")

    def handle(self, *args, **options):
        self.stdout.write(render_markdown(builtin_only=not options["all"]), ending="")
