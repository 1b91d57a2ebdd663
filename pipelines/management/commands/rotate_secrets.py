"""``manage.py rotate_secrets``: re-encrypt every stored secret under the newest master key.

Put the new key first in DATAHUB_MASTER_KEY (``new,old``), restart, run this, then drop the old key. A
secret that no key decrypts is left as it is and named; the command then exits with an error, so a
script notices. Values never appear in the output.
"""

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from pipelines.models import Secret
from pipelines.secrets import rotate


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the newest master key (the first in DATAHUB_MASTER_KEY)."

    def handle(self, *args, **options):
        rotated, failed = 0, []
        for pk in Secret.objects.exclude(ciphertext="").order_by("code").values_list("pk", flat=True):
            with transaction.atomic():
                secret = Secret.objects.select_for_update().get(pk=pk)
                try:
                    secret.ciphertext = rotate(secret.ciphertext)
                except InvalidToken:
                    failed.append(secret.code)
                    continue
                secret.save(update_fields=["ciphertext", "updated_at"])
                rotated += 1
        self.stdout.write(f"re-encrypted {rotated} secret(s) under the newest master key")
        if failed:
            raise CommandError(f"{len(failed)} secret(s) cannot be decrypted by any master key and were left "
                               f"as they are: {', '.join(failed)}")
