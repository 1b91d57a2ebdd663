"""Telling people about review: an email to the reviewers when a change is submitted, and one to its
author when it is approved or rejected (with the reviewer's comment).

A notice is a django-q task queued once the submitting or deciding transaction has committed, so a slow
or broken mail server never holds a submission or a decision up, and a rolled-back decision (a stale
base) announces nothing. The task reads the submission when it runs: one decided before its "waiting"
email went is not announced as waiting any more. Reviewers are the active people with the review
permission who may use the pipeline and may decide this submission (so never its author), and who have
an email address; each gets their own message. Mail goes through Django's email backend (``EMAIL_URL``).
Queueing never raises: a notice is a courtesy, the review page and the queue are the record.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.urls import reverse

from pipelines import access
from pipelines.models import PipelineReview, ReviewStatus

log = logging.getLogger(__name__)

TASK = "pipelines.review_notices.send"


def base_url() -> str:
    return str(getattr(settings, "DATAHUB_BASE_URL", "http://127.0.0.1:8000")).rstrip("/")


def queue(review: PipelineReview, event: str) -> None:
    """Send the ``event`` ("submitted" or "decided") notice of ``review`` after the transaction commits."""

    def enqueue():
        try:
            from django_q.tasks import async_task

            async_task(TASK, review.pk, event, group="review-notices")
        except Exception:
            log.exception("the %s notice of submission %s could not be queued", event, review.pk)

    transaction.on_commit(enqueue)


def reviewers_of(review: PipelineReview) -> list:
    """Who may decide ``review`` and can be told by email."""
    app, codename = access.REVIEW_PERMISSION.split(".")
    perm = Permission.objects.filter(content_type__app_label=app, codename=codename).first()
    holders = Q(is_superuser=True)
    if perm is not None:
        holders |= Q(user_permissions=perm) | Q(groups__permissions=perm)
    people = get_user_model().objects.filter(holders, is_active=True).exclude(email="").distinct().order_by("pk")
    return [person for person in people if access.may_decide(person, review)]


def send(review_id: int, event: str) -> str:
    """The task: write and send the notice; returns what it did (kept in the task's result)."""
    review = (PipelineReview.objects.select_related("pipeline", "author", "decided_by", "revision")
              .filter(pk=review_id).first())
    if review is None:
        return "the submission is gone"
    url = base_url() + reverse("review-detail", args=[review.pk])
    author = review.author.get_username() if review.author else "someone"
    what = f"“{review.message or '(no message)'}”"
    if event == "submitted":
        if review.status != ReviewStatus.PENDING:
            return f"not sent: submission {review.pk} is {review.status.lower()} already"
        to = [person.email for person in reviewers_of(review)]
        subject = f"[Datahub] {review.pipeline.name}: a change waits for your review"
        body = (f"{author} submitted a change of {review.pipeline.name} ({review.pipeline.code}) for review:\n"
                f"{what}\n\nSee the diff and approve or reject it:\n{url}\n")
    elif event == "decided":
        if review.status not in (ReviewStatus.APPROVED, ReviewStatus.REJECTED):
            return f"not sent: submission {review.pk} is {review.status.lower()}"
        to = [review.author.email] if review.author and review.author.email else []
        who = review.decided_by.get_username() if review.decided_by else "a reviewer"
        if review.status == ReviewStatus.APPROVED:
            subject = f"[Datahub] {review.pipeline.name}: your change was approved"
            published = f" and published as revision {review.revision.number}" if review.revision else ""
            body = f"{who} approved your change {what} of {review.pipeline.name}{published}.\n"
        else:
            subject = f"[Datahub] {review.pipeline.name}: your change was rejected"
            body = (f"{who} rejected your change {what} of {review.pipeline.name}. Your draft is as you left "
                    "it: change it and submit again.\n")
        if review.comment:
            body += f"\nComment:\n{review.comment}\n"
        body += f"\n{url}\n"
    else:
        raise ValueError(f"unknown review notice '{event}'")
    if not to:
        return "nobody to tell (no address)"
    for address in to:  # one message each: addresses are not shown to one another
        EmailMessage(subject, body, to=[address]).send()
    return f"sent to {len(to)}"
