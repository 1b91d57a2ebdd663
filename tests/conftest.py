import os
import socket

import pytest

# Playwright's sync API runs an event loop in the test thread; the ORM refuses that unless told (tests only).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PERMISSIONS = {
    # alice owns pipelines: she may view, edit, run them and approve gates.
    "alice": ["pipelines.view_pipeline", "pipelines.add_pipeline", "pipelines.change_pipeline",
              "pipelines.delete_pipeline", "pipelines.run_pipeline", "runs.view_run", "runs.change_run",
              "gates.approve_gate"],
    # bob is a member who may look but not touch.
    "bob": ["pipelines.view_pipeline", "runs.view_run"],
    # charlie is an outsider: logged in, no permissions at all.
    "charlie": [],
    # rita reviews changes of pipelines that require review (and may edit, like alice).
    "rita": ["pipelines.view_pipeline", "pipelines.change_pipeline", "pipelines.review_pipeline", "runs.view_run"],
}
PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _no_lockout_or_rates(request, settings):
    """Lock-out and request rates only where a test asks for them (``@pytest.mark.lockout``).

    Elsewhere tests log in with ``client.login`` (which authenticates without a request, something
    django-axes refuses) and send more requests than a person would; the rate counters also live in a
    per-process cache that outlives each test's database.
    """
    if request.node.get_closest_marker("lockout") is None:
        settings.AXES_ENABLED = False
        settings.DATAHUB_RATE_LIMITS = {}
    else:
        from django.core.cache import cache

        cache.clear()


def _persona(django_user_model, name):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(username=name, password=PASSWORD, email=f"{name}@example.com")
    for perm in PERMISSIONS[name]:
        app, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    return user


@pytest.fixture
def alice(django_user_model):
    return _persona(django_user_model, "alice")


@pytest.fixture
def bob(django_user_model):
    return _persona(django_user_model, "bob")


@pytest.fixture
def charlie(django_user_model):
    return _persona(django_user_model, "charlie")


@pytest.fixture
def rita(django_user_model):
    return _persona(django_user_model, "rita")


@pytest.fixture
def no_connect(monkeypatch):
    """Fail the test if any socket connection is attempted."""
    from pipelines import http as http_module

    def refuse(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(http_module.urllib3_connection, "create_connection", refuse)


@pytest.fixture
def hanging_port():
    """A port that accepts connections (the kernel backlog) but never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


# Fixtures through which a test reaches a database (pytest-django's, and its own ones that open connections).
# (django_db_blocker is in every test's closure through pytest-django's autouse fixtures: it says nothing.)
_DATABASE_FIXTURES = frozenset({"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback",
                                "live_server"})
_DATABASE_MARKERS = ("django_db", "postgres", "mysql", "own_database")


def pytest_collection_modifyitems(config, items):
    """Mark the tests that never touch a database ``no_database``: a second pass of the suite on another
    database (``.ci/run`` on PostgreSQL) leaves them out, as they would run exactly as in the first pass.
    The marking cannot hide a test that does use one: pytest-django refuses database access to a test without
    these fixtures or markers, so such a test fails in the first pass."""
    for item in items:
        if _DATABASE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())) and not any(
            item.get_closest_marker(name) for name in _DATABASE_MARKERS
        ):
            item.add_marker(pytest.mark.no_database)
