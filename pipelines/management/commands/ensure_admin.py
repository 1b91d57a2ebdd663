from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a superuser with the given name and password if no user of that name exists."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", required=True)

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(username=options["username"]).exists():
            self.stdout.write(f"user {options['username']} exists; password unchanged")
            return
        User.objects.create_superuser(options["username"], password=options["password"])
        self.stdout.write(f"created superuser {options['username']}")
