"""manage.py consume: run the MESSAGE triggers' consumers until SIGTERM (see runs.consumers.supervisor)."""

import logging
import signal

from django.core.management.base import BaseCommand

from runs.consumers.supervisor import Supervisor


class Command(BaseCommand):
    help = ("Consume the queues and streams of MESSAGE triggers: every consumer whose pipeline is enabled and "
            "that is not stopped (Queues page, `manage.py consumers stop`) runs here, unless another consume "
            "process holds it. Stops cleanly on SIGTERM or Ctrl-C within a few seconds.")

    def add_arguments(self, parser):
        parser.add_argument("--pipeline", action="append", default=[], metavar="CODE",
                            help="only the consumers of this pipeline (repeat for several)")

    def handle(self, *args, pipeline, **options):
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        supervisor = Supervisor(pipeline_codes=pipeline)

        def stop(signum, frame):
            supervisor.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"consume {supervisor.name}: consuming (SIGTERM or Ctrl-C stops)")
        self.stdout.flush()
        supervisor.run()
        self.stdout.write(f"consume {supervisor.name}: stopped")
