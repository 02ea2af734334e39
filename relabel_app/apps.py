from django.apps import AppConfig


class RelabelAppConfig(AppConfig):
    name = "relabel_app"
    verbose_name = "AudioSet data"
