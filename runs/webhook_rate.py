"""The per-client rate limit of webhook triggers: ``rateLimit`` deliveries per ``rateLimitWindow`` seconds
for each (pipeline, trigger, client), answered with 429 and ``Retry-After`` beyond that.

Counted in the database (:class:`~runs.models.WebhookRateCount`), not in a process's memory or the
default per-process cache, so every web process and machine shares one count. Windows are fixed (they
start at multiples of the window length), so a client may send up to twice the limit across a window's
edge; the count is exact within a window. Every request counts, refused ones too: the limit is also the
brake on guessing keys.

The client is its address as the login lock-out sees it (:func:`datahub_project.lockout.client_ip`:
``REMOTE_ADDR``, or behind ``DATAHUB_PROXY_COUNT`` proxies the ``X-Forwarded-For`` entry they wrote).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest

from datahub_project.lockout import client_ip
from runs.models import WebhookRateCount

DEFAULT_LIMIT = 100
DEFAULT_WINDOW = 60


def _positive_int(value, default: int | None) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return default


def limits(config: dict) -> tuple[int, int]:
    """(deliveries allowed per window (0: no limit), the window in seconds) of a trigger's config."""
    limit = _positive_int(config.get("rateLimit", DEFAULT_LIMIT), DEFAULT_LIMIT)
    return limit, _positive_int(config.get("rateLimitWindow"), None) or DEFAULT_WINDOW


def client_of(request: HttpRequest) -> str:
    return str(client_ip(request) or "unknown")[:100]


def count_delivery(pipeline_id: int, trigger_key: str, client: str, config: dict, *, now: float | None = None) -> int | None:
    """Count one delivery; None when it is within the limit, else the seconds until the window ends."""
    limit, window = limits(config)
    if not limit:
        return None
    now = time.time() if now is None else now
    slot = int(now // window)
    row = WebhookRateCount.objects.filter(pipeline_id=pipeline_id, trigger_key=trigger_key, client=client, window=slot)
    # UPDATE ... SET count = count + 1 and the read of the count in one transaction: the update's row lock
    # keeps every other delivery out until this one has read its own number, so each delivery gets a
    # distinct number and exactly ``limit`` of them pass.
    with transaction.atomic():
        if not row.update(count=F("count") + 1):
            try:
                with transaction.atomic():
                    WebhookRateCount.objects.create(
                        pipeline_id=pipeline_id, trigger_key=trigger_key, client=client, window=slot, count=1,
                        expires_at=datetime.fromtimestamp((slot + 1) * window, UTC))
            except IntegrityError:  # another process opened the window first: count into its row
                row.update(count=F("count") + 1)
            # Opening a window is rare enough to sweep out every ended one here.
            WebhookRateCount.objects.filter(expires_at__lte=datetime.fromtimestamp(now, UTC)).delete()
        count = row.values_list("count", flat=True).first() or 0
    if count <= limit:
        return None
    return max(1, int((slot + 1) * window - now + 0.999))
