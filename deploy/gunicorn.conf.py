"""gunicorn settings for the web process: ``gunicorn -c deploy/gunicorn.conf.py datahub_project.wsgi``.

Every value can be overridden on the command line or with gunicorn's own ``GUNICORN_CMD_ARGS``. Pages and
the API are short requests; runs execute on the workers (``manage.py worker``), never in the web process.
"""

import os

bind = os.environ.get("DATAHUB_BIND", "127.0.0.1:8000")
# Sync workers: 2-4 per core is gunicorn's advice; WEB_CONCURRENCY is the usual knob on platforms.
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("DATAHUB_WEB_THREADS", "1"))
timeout = 60
graceful_timeout = 30
keepalive = 5
# The app is imported once, in the master, and every worker is forked from it ready to answer: a worker that
# imported it itself took a second or two, and requests waited for it each time one was recycled (every
# 10-20 s at the 1,000 req/s the page cache serves: bench/README.md, "Third pass").
preload_app = True
# Recycle a worker now and then so a slow leak cannot grow for ever; with the app preloaded a new worker is
# a fork.
max_requests = 10000
max_requests_jitter = 1000
# Heartbeat files in memory, not on a disk that may stall.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = "-"
errorlog = "-"
# X-Forwarded-* is trusted from these proxy addresses only (gunicorn's default: 127.0.0.1).
forwarded_allow_ips = os.environ.get("DATAHUB_FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """Refuse to start on a system check error, as `migrate` and `manage.py worker` do (for example a superuser with
    a weak password under the production profile, or a stored secret no master key decrypts)."""
    import gc

    import django
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    call_command("check", fail_level="ERROR")
    # The checks query the database. A connection left open here would be inherited by every worker forked
    # from this process: with persistent connections (DATAHUB_DB_CONN_MAX_AGE) they would all talk over the
    # same socket and read one another's results (one request answered with another's rows).
    connections.close_all()
    # Everything imported so far lives as long as the process: frozen, the workers' full garbage collections
    # no longer walk it, and do not write into the pages they share with this process (copy-on-write).
    gc.freeze()
