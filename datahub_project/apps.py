from django.apps import AppConfig


class DatahubProjectConfig(AppConfig):
    name = "datahub_project"
    verbose_name = "Datahub"

    def ready(self) -> None:
        from datahub_project import checks, generations  # noqa: F401  (checks registers the system checks)

        generations.install()
