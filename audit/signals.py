"""What the audit trail hears by itself: logins and lock-outs, and changes to tokens, pipelines, secrets,
connections (their owners and teams too) and runs, from the models' signals (senders named by label, so this app imports no other).
Gate decisions and cancelled runs are recorded where they happen (gates.services, runs.services): those
are conditional UPDATEs, which send no signal."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from audit.trail import record


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    record("login.succeeded", f"user:{user.get_username()}", user=user, request=request)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # Django has already masked the password in credentials; only the name tried is kept.
    username = str((credentials or {}).get("username") or "")[:150]
    record("login.failed", f"user:{username}" if username else "", request=request, actor_name="anonymous")


@receiver(user_locked_out)
def _locked_out(sender, request, username=None, ip_address=None, **kwargs):
    record("login.locked_out", f"user:{username}" if username else "", request=request, actor_name="anonymous")


@receiver(post_save, sender="authtoken.Token")
def _token_saved(sender, instance, created, **kwargs):
    if created:
        record("token.created", f"user:{instance.user.get_username()}")


@receiver(post_delete, sender="authtoken.Token")
def _token_deleted(sender, instance, **kwargs):
    record("token.revoked", f"user:{instance.user.get_username()}")


@receiver(post_save, sender="pipelines.PipelineRevision")
def _revision_saved(sender, instance, created, **kwargs):
    if not created:
        return
    restored = instance.message.startswith("restored r")
    record("pipeline.restored" if restored else "pipeline.published", f"pipeline:{instance.pipeline.code}",
           user=instance.created_by, revision=instance.number, message=instance.message)


@receiver(post_delete, sender="pipelines.Pipeline")
def _pipeline_deleted(sender, instance, **kwargs):
    record("pipeline.deleted", f"pipeline:{instance.code}", name=instance.name)


@receiver(post_save, sender="pipelines.Secret")
def _secret_saved(sender, instance, created, update_fields=None, **kwargs):
    # Never the value: only where it is kept (encrypted, or the name of an environment variable).
    stored = f"env:{instance.env_name}" if instance.env_name else ("encrypted" if instance.ciphertext else "unset")
    details = {"stored": stored}
    if update_fields:
        details["fields"] = sorted(update_fields)
    record("secret.created" if created else "secret.changed", f"secret:{instance.code}", **details)


@receiver(post_delete, sender="pipelines.Secret")
def _secret_deleted(sender, instance, **kwargs):
    record("secret.deleted", f"secret:{instance.code}")


@receiver(post_save, sender="pipelines.Connection")
def _connection_saved(sender, instance, created, **kwargs):
    config = instance.config if isinstance(instance.config, dict) else {}
    record("connection.created" if created else "connection.changed", f"connection:{instance.code}",
           type=instance.type, configKeys=sorted(config))


@receiver(post_delete, sender="pipelines.Connection")
def _connection_deleted(sender, instance, **kwargs):
    record("connection.deleted", f"connection:{instance.code}")


@receiver(post_save, sender="runs.Run")
def _run_created(sender, instance, created, **kwargs):
    if not created:
        return
    record("run.replayed" if instance.replay_of_id else "run.started", f"run:{instance.pk}",
           user=instance.triggered_by, pipeline=instance.pipeline.code, trigger=instance.trigger,
           dryRun=instance.dry_run, **({"replayOf": instance.replay_of_id} if instance.replay_of_id else {}))


def _access_changed(sender, instance, action, model, pk_set, reverse, **kwargs):
    if reverse or action not in ("post_add", "post_remove", "post_clear"):
        return
    field = "owners" if model._meta.model_name == "user" else "teams"
    names = sorted(str(o) for o in model.objects.filter(pk__in=pk_set or ()))
    record("access.changed", f"{instance._meta.model_name}:{instance.code}", field=field,
           change=action.removeprefix("post_"), who=names)


for _label in ("Pipeline", "Connection", "Secret"):
    for _field in ("owners", "teams"):
        m2m_changed.connect(_access_changed, sender=f"pipelines.{_label}_{_field}",
                            dispatch_uid=f"audit-access-{_label}-{_field}")
