"""The gallery's page cursor: opaque to its holder, checked in full when it comes back.

It carries the moment the first page was read (pages after it count ❤ and results as of then,
so later results and likes never shift them), the last item's sort key, and a fingerprint of the
query, so a cursor is refused with any other query. Anything else is a `UserError`, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass

from sojourn.errors import UserError

MAX_LENGTH = 400
VERSION = 1


class BadCursor(UserError):
    def __init__(self) -> None:
        super().__init__("That page link is broken or out of date: start again from the first page.")


@dataclass(frozen=True)
class Cursor:
    as_of: dt.datetime
    key: dt.datetime | int  # the last item's finished_at (new) or ❤ count (top)
    job_id: uuid.UUID


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def encode_cursor(cursor: Cursor, query_fingerprint: str) -> str:
    key = cursor.key.isoformat() if isinstance(cursor.key, dt.datetime) else cursor.key
    body = {
        "version": VERSION,
        "query": query_fingerprint,
        "as_of": cursor.as_of.isoformat(),
        "key": key,
        "job": str(cursor.job_id),
    }
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(text: str, query_fingerprint: str, *, key_is_time: bool) -> Cursor:
    if not isinstance(text, str) or not 0 < len(text) <= MAX_LENGTH:
        raise BadCursor()
    try:
        body = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if (
            not isinstance(body, dict)
            or body.get("version") != VERSION
            or body.get("query") != query_fingerprint
        ):
            raise BadCursor()
        as_of = _aware(body["as_of"])
        raw_key = body["key"]
        key: dt.datetime | int
        if key_is_time:
            key = _aware(raw_key)
        elif type(raw_key) is int and 0 <= raw_key < 2**31:
            key = raw_key
        else:
            raise BadCursor()
        job_id = uuid.UUID(body["job"])
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError, AttributeError) as error:
        raise BadCursor() from error
    return Cursor(as_of=as_of, key=key, job_id=job_id)


def _aware(value: object) -> dt.datetime:
    if not isinstance(value, str):
        raise BadCursor()
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise BadCursor()
    return moment.astimezone(dt.UTC)
