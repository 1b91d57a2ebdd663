"""Shaping a webhook notice for where it goes: Datahub's own JSON, a Slack or a Microsoft Teams incoming
webhook. [pure]

A notice is told once as a :class:`Notice` (a title, a line of text, facts, links); :data:`FORMATS` says
how each format writes it:

- ``datahub`` (the default): the caller's own JSON, unchanged.
- ``slack``: Slack's incoming-webhook message, ``{"text", "blocks"}`` with a header, a section of
  ``mrkdwn`` fields and an actions block of link buttons (api.slack.com/messaging/webhooks, Block Kit).
  Text is escaped as Slack asks (``&``, ``<``, ``>``), so a record value cannot make a link or a mention.
- ``teams``: a Teams incoming webhook (Workflows or the older connector) message with one Adaptive Card
  attachment: ``{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", "version": "1.4", ...}}]}``
  with a TextBlock title, a FactSet and ``Action.OpenUrl`` buttons (learn.microsoft.com, "Create incoming
  webhooks" / "Send Adaptive Cards using an incoming webhook"). Adaptive Card text is plain (no HTML).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Slack limits a section's text to 3000 characters, a field to 2000, a header to 150.
_SLACK_TEXT = 3000
_SLACK_FIELD = 2000
_SLACK_HEADER = 150


@dataclass(frozen=True)
class Notice:
    title: str
    text: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, url)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack(notice: Notice, raw: dict) -> dict:
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(notice.title, _SLACK_HEADER)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(_slack_escape(notice.text), _SLACK_TEXT)}},
    ]
    if notice.facts:
        blocks.append({"type": "section", "fields": [
            {"type": "mrkdwn", "text": _cut(f"*{_slack_escape(k)}*\n{_slack_escape(v)}", _SLACK_FIELD)}
            for k, v in notice.facts[:10]  # Slack takes at most 10 fields per section
        ]})
    if notice.links:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}
            for label, url in notice.links[:5]
        ]})
    return {"text": _cut(f"{notice.title}: {notice.text}", _SLACK_TEXT), "blocks": blocks}


def teams(notice: Notice, raw: dict) -> dict:
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": notice.title, "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "TextBlock", "text": notice.text, "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in notice.facts]},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": label, "url": url} for label, url in notice.links],
    }
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def datahub(notice: Notice, raw: dict) -> dict:
    return raw


FORMATS: dict[str, Callable[[Notice, dict], dict]] = {"datahub": datahub, "slack": slack, "teams": teams}
FORMAT_SCHEMA = {"type": "string", "enum": list(FORMATS), "default": "datahub",
                 "description": "How the webhook's JSON is shaped: datahub (Datahub's own), slack (a Slack "
                 "incoming webhook) or teams (a Microsoft Teams incoming webhook, an Adaptive Card)."}


def shape(format_name: str | None, notice: Notice, raw: dict) -> dict:
    """The body to POST; an unknown format name is a ValueError naming the known ones."""
    try:
        return FORMATS[format_name or "datahub"](notice, raw)
    except KeyError:
        raise ValueError(f"unknown webhook format '{format_name}' (formats: {', '.join(FORMATS)})") from None
