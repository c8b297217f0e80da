"""The one Django app of the site; its label `clinic` names the tables."""

from __future__ import annotations

from django.apps import AppConfig


class ClinicConfig(AppConfig):
    name = "benzotaper.web"
    label = "clinic"
    verbose_name = "benzotaper clinic"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from benzotaper.web import audit, replans

        audit.connect()
        replans.connect()
