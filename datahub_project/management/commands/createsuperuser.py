"""Django's createsuperuser, with the password validators applied also to ``--noinput``.

Django checks a typed password but takes ``DJANGO_SUPERUSER_PASSWORD`` as it is; here a weak one is
refused (and no user is created) like everywhere else a password is set.
"""

import os

from django.contrib.auth.management.commands import createsuperuser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError


class Command(createsuperuser.Command):
    def handle(self, *args, **options):
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        if not options["interactive"] and password:
            username = options.get(self.UserModel.USERNAME_FIELD) or os.environ.get(
                "DJANGO_SUPERUSER_" + self.UserModel.USERNAME_FIELD.upper(), "")
            try:
                validate_password(password, self.UserModel(**{self.UserModel.USERNAME_FIELD: username}))
            except ValidationError as exc:
                raise CommandError("DJANGO_SUPERUSER_PASSWORD is refused: " + " ".join(exc.messages)) from None
        return super().handle(*args, **options)
