"""Real ``manage.py consume`` processes against the test database (tests with ``transaction=True``, so what
the test writes is committed and the process sees it, and the other way round)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    scheme = {"postgresql": "postgres", "mysql": "mysql"}[s["ENGINE"].rsplit(".", 1)[1]]
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"{scheme}://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or ''}/{s['NAME']}"


class ConsumeProcess:
    def __init__(self, tmp_path: Path, name: str, *args: str, lease_seconds: int = 2):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DATAHUB_", "DJANGO_")) and k not in ("DATABASE_URL", "REDIS_URL")}
        env.update({"DJANGO_SETTINGS_MODULE": "datahub_project.settings", "DATABASE_URL": database_url(),
                    "DATAHUB_VAR_DIR": str(tmp_path / "var"), "DATAHUB_CONSUMER_LEASE_SECONDS": str(lease_seconds),
                    "PYTHONUNBUFFERED": "1"})
        self.log_path = tmp_path / f"{name}.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "manage.py", "consume", *args], cwd=ROOT, env=env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text()[-5000:]

    def kill(self) -> None:
        """SIGKILL: a crash (no clean-up of any kind)."""
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float) -> float | None:
        """SIGTERM; the seconds it took to exit, or None when it had not after ``timeout`` (then killed)."""
        import time

        start = time.monotonic()
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
            return time.monotonic() - start
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
