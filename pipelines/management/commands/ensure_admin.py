"""``manage.py ensure_admin [--username admin] [--password P]``: make sure a superuser exists.

With ``--password`` the password must pass AUTH_PASSWORD_VALIDATORS (a weak one is refused, the user is
not created). Without it the superuser gets no usable password and the command prints a one-time setup
link (Django's password-reset link: it works once, until the password is set, and expires after
PASSWORD_RESET_TIMEOUT), so no password ever has to pass through a shell history or a deploy script.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode


def setup_link(user) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return settings.DATAHUB_BASE_URL + reverse("password_reset_confirm", args=[uid, token])


class Command(BaseCommand):
    help = ("Create a superuser with the given name if no user of that name exists: with --password (checked "
            "by the password validators), or without one and print a one-time link to set it.")

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", help="Omit it to get a one-time setup link instead.")

    def handle(self, *args, **options):
        User = get_user_model()
        username, password = options["username"], options["password"]
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"user {username} exists; password unchanged")
            return
        if password is not None:
            try:
                validate_password(password, User(username=username))
            except ValidationError as exc:
                raise CommandError(f"the password for {username} is refused: " + " ".join(exc.messages)) from None
        user = User.objects.create_superuser(username, password=password)
        if password is None:
            self.stdout.write(f"created superuser {username} with no password; set it once at:\n{setup_link(user)}")
        else:
            self.stdout.write(f"created superuser {username}")
