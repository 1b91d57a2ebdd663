from django.apps import AppConfig


class GatesConfig(AppConfig):
    name = "gates"
    verbose_name = "Gates"

    def ready(self) -> None:
        from gates import services
        from runs import dashboard_tiles
        from runs.signals import step_paused

        # dispatch_uid: connected once however often ready() runs (tests, reloads).
        step_paused.connect(services.on_step_paused, dispatch_uid="gates.on_step_paused")
        dashboard_tiles.register_tile(dashboard_tiles.Tile("gates-waiting", "Gates waiting",
                                                           services.waiting_count, "/gates/", "review approvals"))
