from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = "Pipelines"

    def ready(self) -> None:
        from django.conf import settings

        from pipelines.plugins import load_plugins

        load_plugins(settings.DATAHUB_PLUGIN_MODULES)
        from pipelines import access  # noqa: F401  (registers the object permissions)
