from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from runs import signals  # noqa: F401  (connects post_migrate: the reaper schedule)
