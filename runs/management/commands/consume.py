"""manage.py consume: run the MESSAGE triggers' consumers until SIGTERM (see runs.consumers.supervisor)."""

import logging
import signal

from django.core.management.base import BaseCommand, CommandError

from runs.consumers.supervisor import Supervisor


class Command(BaseCommand):
    help = ("Consume the queues and streams of MESSAGE triggers: every consumer whose pipeline is enabled and "
            "that is not stopped (Queues page, `manage.py consumers stop`) runs here, unless another consume "
            "process holds it. Stops cleanly on SIGTERM or Ctrl-C within a few seconds.")

    def add_arguments(self, parser):
        parser.add_argument("--pipeline", action="append", default=[], metavar="CODE",
                            help="only the consumers of this pipeline (repeat for several)")
        parser.add_argument("--tick", type=float, default=2.0, metavar="SECONDS",
                            help="how often to follow starts, stops and config changes, and renew the lease (2)")

    def handle(self, *args, pipeline, tick, **options):
        if not 0.1 <= tick <= 60:
            raise CommandError("--tick must be between 0.1 and 60 seconds")
        # pika tells every connection's opening and closing at INFO: noise in a process that reconnects.
        logging.getLogger("pika").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
        supervisor = Supervisor(pipeline_codes=pipeline, tick_s=tick)

        def stop(signum, frame):
            supervisor.stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        supervisor.run()  # logs when it starts and stops, and each consumer it starts or stops
