from django.apps import AppConfig


class GatesConfig(AppConfig):
    name = "gates"
    verbose_name = "Gates"

    def ready(self) -> None:
        from gates import services
        from runs.signals import step_paused

        # dispatch_uid: connected once however often ready() runs (tests, reloads).
        step_paused.connect(services.on_step_paused, dispatch_uid="gates.on_step_paused")
