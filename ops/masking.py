"""Credentials never leave in a message: every error line, log line and API answer passes
`mask()`, which hides the password of any URL (`redis://app:***@host:6379/0`) and every
secret the loaded settings hold (the Redis URL's password, Kafka client properties such as
`sasl.password`), wherever a library's message repeats them.

`config.load()` registers the secrets of the settings it reads; the CLI's error line, the log
formatters (ops/logs.py) and the HTTP API's JSON answers mask what they write.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

MASK = "***"

# scheme://user:password@ -> the password; scheme://password@ (no user) is a password too
_URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^:@/\s]*:)?)"
                              r"(?P<secret>[^@/\s]+)@")
# Kafka client properties that hold a secret (librdkafka's names)
_SECRET_PROPERTY = re.compile(r"password|secret|token|jaas|\.key\b|key\.pem|credentials",
                              re.IGNORECASE)

_secrets: set[str] = set()


def masked_url(url: str) -> str:
    """The URL with its password (or a bare user-info secret) as `***`."""
    return _URL_CREDENTIALS.sub(lambda m: m["head"] + MASK + "@", url)


def remember_url(url: str) -> None:
    """Keeps the URL's password to mask wherever it shows."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return
    if password:
        _secrets.update({password, unquote(password)})


def remember_client(properties: dict[str, str]) -> None:
    """Keeps the secret values of Kafka client properties to mask wherever they show."""
    for name, value in properties.items():
        if _SECRET_PROPERTY.search(name) and value:
            _secrets.add(value)


def masked_client(properties: dict[str, str]) -> dict[str, str]:
    """Client properties fit to print: secret ones as `***`."""
    return {name: MASK if _SECRET_PROPERTY.search(name) else value
            for name, value in properties.items()}


def mask(text: str) -> str:
    """`text` with URL credentials and every remembered secret as `***`."""
    text = masked_url(text)
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: no half-masking
        if secret in text:
            text = text.replace(secret, MASK)
    return text
