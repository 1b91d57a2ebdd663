import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from pipelines import access
from pipelines.errors import DefinitionError
from pipelines.files import read_definition_file
from pipelines.models import Pipeline
from pipelines.services import save_definition
from runs import services
from runs.models import RecordError


class Command(BaseCommand):
    help = (
        "Run a pipeline by code, or from a definition JSON file (imported first). Without --sync the run is "
        "queued for a worker (python manage.py qcluster)."
    )

    def add_arguments(self, parser):
        parser.add_argument("target", help="pipeline code or FILE.json")
        parser.add_argument("--sync", action="store_true", help="run here and now, in this process")
        parser.add_argument("--dry-run", action="store_true", help="write nothing: loaders and exports are simulated")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--show-output", metavar="STEP", action="append", default=[],
                            help="with --sync: include this step's output records (repeatable)")
        parser.add_argument("--limit", type=int, help="stop extracting after this many records")
        parser.add_argument("--revision", type=int, help="run this revision instead of the current one")
        parser.add_argument("--allow-concurrent", action="store_true",
                            help="start even if another run of the pipeline is active")
        parser.add_argument("--as", dest="as_user", metavar="USERNAME",
                            help="run as this person: only their pipelines (owners and teams) and with their "
                            "'pipelines.run_pipeline' permission; the run is theirs in the audit trail")

    def handle(self, *args, **o):
        if o["show_output"] and not o["sync"]:
            raise CommandError("--show-output needs --sync (the output is kept only in the process that runs it)")
        if o["limit"] is not None and o["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        user = self._user(o["as_user"]) if o["as_user"] else None
        pipeline = self._pipeline(o["target"], user)
        known = {s.key for s in pipeline.steps.all()}
        for key in o["show_output"]:
            if key not in known:
                raise CommandError(f"--show-output: pipeline '{pipeline.code}' has no step '{key}' "
                                   f"(steps: {', '.join(sorted(known))})")
        try:
            with transaction.atomic():
                create = services.create_run if o["sync"] else services.start_run
                run = create(pipeline, user=user, revision=o["revision"], dry_run=o["dry_run"], record_limit=o["limit"],
                             trigger="cli", allow_concurrent=o["allow_concurrent"] or None)
        except (DefinitionError, services.RunConflict) as exc:
            raise CommandError(str(exc)) from None
        if not o["sync"]:
            self._print(run, None, o)
            return
        outcome = services.run_now(run, keep_outputs=frozenset(o["show_output"]))
        self._print(outcome.run, outcome.result, o)
        if outcome.result is not None:
            outcome.result.close()
        if outcome.run.status == "FAILED":
            raise SystemExit(1)

    def _user(self, username: str):
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"--as: no active user '{username}'")
        if not user.has_perm("pipelines.run_pipeline"):
            raise CommandError(f"--as: {username} may not run pipelines (no 'pipelines.run_pipeline' permission)")
        return user

    def _pipeline(self, target: str, user=None) -> Pipeline:
        if target.endswith(".json") or Path(target).is_file():
            try:
                data = read_definition_file(target)
                code = (data.get("code") if isinstance(data, dict) else None) or Path(target).stem.lower()
                return save_definition(data, code=code, user=user, message=f"run from {target}")
            except DefinitionError as exc:
                raise CommandError(f"{target} is not a valid pipeline:\n" + "\n".join(
                    f"  - {p}" for p in exc.problems)) from None
        pipelines = access.visible(user, Pipeline.objects) if user is not None else Pipeline.objects
        pipeline = pipelines.filter(code=target).first()
        if pipeline is None:
            known = ", ".join(pipelines.values_list("code", flat=True)[:20]) or "none yet"
            raise CommandError(f"no pipeline '{target}' (known: {known}); give a code or a FILE.json")
        if not pipeline.enabled:
            raise CommandError(f"pipeline '{target}' is disabled")
        return pipeline

    def _print(self, run, result, o):
        steps = []
        for s in run.step_runs.order_by("position"):
            item = {
                "key": s.step_key, "status": s.status, "attempts": s.attempts,
                "recordsIn": s.records_in, "recordsOut": s.records_out,
                "recordsError": s.records_error, "recordsDropped": s.records_dropped,
                "durationMs": s.duration_ms, "error": s.error or None,
                "errors": [
                    {"message": e.message, "record": e.record}
                    for e in RecordError.objects.filter(run=run, step_key=s.step_key)[:20]
                ],
            }
            if result is not None and s.step_key in o["show_output"]:
                item["output"] = result.output(s.step_key)
            steps.append(item)
        report = {"runId": run.pk, "pipeline": run.pipeline.code, "revision": run.revision.number,
                  "status": run.status, "dryRun": run.dry_run, "error": run.error or None, "steps": steps}
        if o["json"]:
            self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False, default=str))
            return
        if run.status == "PENDING":
            self.stdout.write(f"run {run.pk} of {run.pipeline.code} queued; a worker (manage.py qcluster) runs it")
            return
        self.stdout.write(f"run {run.pk} of {run.pipeline.code} r{run.revision.number}: {run.status}"
                          + (f" ({run.error})" if run.error else ""))
        for s in steps:
            self.stdout.write(f"  {s['key']:<24} {s['status']:<10} in {s['recordsIn']:>8}  out {s['recordsOut']:>8}"
                              f"  errors {s['recordsError']:>6}" + (f"  {s['error']}" if s["error"] else ""))
            if "output" in s:
                for record in s["output"]:
                    self.stdout.write("    " + json.dumps(record, ensure_ascii=False, default=str))
