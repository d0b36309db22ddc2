"""Prompt search: the words of a search box, each matching the start of a word of the prompt.

Only letters and digits count (anything else separates words), so operators, quotes and SQL in a
search are words or nothing, and every word reaches the database as a bound parameter.
Postgres: `to_tsvector('simple', prompt) @@ to_tsquery('simple', 'w1:* & w2:*')`, the expression
of the GIN index `ix_jobs_prompt_search` ('simple': no stemming or stop words, as prompts mix
languages). SQLite: a scan, each word as `GLOB '*[^a-z0-9]word*'` against the prompt lower-cased
(SQLite folds case in ASCII only, and counts a non-ASCII letter as a separator before a word);
fine at an embedded bot's size, and an FTS5 table's triggers would not survive batch migrations.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, and_, func, literal, literal_column

from db.models import Job
from sojourn.errors import UserError

MAX_WORDS = 8
MAX_WORD_LENGTH = 40
_WORD = re.compile(r"[^\W_]+")


def search_words(text: str) -> list[str]:
    """The words searched for, lower-cased; a search with none is refused in words."""
    words = list(dict.fromkeys(word[:MAX_WORD_LENGTH] for word in _WORD.findall(text.lower())))
    if not words:
        raise UserError("Search for at least one word (letters or digits); other characters are ignored.")
    return words[:MAX_WORDS]


def prompt_matches(words: list[str], dialect: str) -> ColumnElement[bool]:
    """Every word starts a word of the job's prompt."""
    if dialect == "postgresql":
        config: ColumnElement[str] = literal_column("'simple'")
        query = " & ".join(f"{word}:*" for word in words)
        return func.to_tsvector(config, Job.prompt).bool_op("@@")(func.to_tsquery(config, literal(query)))
    padded = func.lower(literal(" ") + Job.prompt)
    return and_(*(padded.op("GLOB", is_comparison=True)(f"*[^a-z0-9]{word}*") for word in words))
