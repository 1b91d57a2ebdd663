"""manage.py consumers list|start|stop: what the MESSAGE consumers are doing, and starting or stopping one."""

import json

from django.core.management.base import BaseCommand, CommandError

from pipelines.errors import DatahubError
from runs.consumers import services


class Command(BaseCommand):
    help = ("List the MESSAGE triggers' consumers (state, lag, rate, errors, dead letters), or start or stop "
            "one: NAME is PIPELINE or PIPELINE/TRIGGER. A consume process follows within a few seconds.")

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "start", "stop"])
        parser.add_argument("name", nargs="?", help="PIPELINE or PIPELINE/TRIGGER (start and stop)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="list as JSON")

    def handle(self, *args, action, name, as_json=False, **options):
        if action == "list":
            return self._list(as_json=as_json)
        if not name:
            raise CommandError(f"consumers {action} needs NAME: PIPELINE or PIPELINE/TRIGGER")
        try:
            found = services.find(name)
        except DatahubError as exc:
            raise CommandError(str(exc)) from None
        services.set_desired(found.consumer, services.RUNNING if action == "start" else services.STOPPED)
        self.stdout.write(f"{found.consumer}: {'started' if action == 'start' else 'stopped'}"
                          + (f" (it cannot run yet: {found.why_not})" if action == "start" and not found.can_run
                             else ""))

    def _list(self, *, as_json: bool) -> None:
        rows = []
        for c in services.configured_consumers():
            k = c.consumer
            rows.append({"consumer": str(k), "queueType": k.queue_type, "queue": k.queue_name, "desired": k.desired,
                         "state": c.shown_state, "owner": k.owner, "lag": k.lag, "rate": k.rate,
                         "received": k.received, "runsStarted": k.runs_started, "acked": k.acked,
                         "errors": k.errors, "deadLetters": k.dead_letters, "lastError": k.last_error,
                         "cannotRun": c.why_not or None})
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("no MESSAGE triggers")
        for r in rows:
            self.stdout.write(f"{r['consumer']:<40} {r['state']:<12} {r['queueType']} {r['queue']}  lag {r['lag']}  "
                              f"{r['rate']}/s  received {r['received']}  runs {r['runsStarted']}  "
                              f"errors {r['errors']}  dead letters {r['deadLetters']}")
