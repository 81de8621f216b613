"""Posting a notification to a chat webhook: one JSON POST whose `text` is the message (the shape Slack,
Mattermost, Rocket.Chat and Google Chat incoming webhooks accept), with the event's fields beside it.

The URL of such a webhook is a credential (it holds the token): it never appears in a log line or an
error, and errors do not chain the HTTP library's exception, whose message would quote it.
"""

from __future__ import annotations

from typing import Any

import requests


class WebhookError(RuntimeError):
    """The webhook could not take the message (the URL itself is never in the message)."""


def post_message(url: str, text: str, timeout_s: float = 10.0, **fields: Any) -> None:
    """POST `{"text": text, **fields}` to `url`; `WebhookError` unless it answers 2xx."""
    try:
        answer = requests.post(url, json={"text": text, **fields}, timeout=timeout_s)
    except requests.RequestException as exc:
        raise WebhookError(f"the alert webhook could not be reached ({type(exc).__name__})") from None
    if not 200 <= answer.status_code < 300:
        raise WebhookError(f"the alert webhook answered HTTP {answer.status_code}")
