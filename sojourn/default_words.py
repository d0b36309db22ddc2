"""The word rules every server starts with (a server extends them, or turns them off).

Kept small on purpose, like Discord's AutoMod presets: words whose only use in an image prompt
is asking for sexual content or for harm to real children. Each is a whole word unless it has a
`*`; an innocent word that contains one ("Sussex", "class") does not match (see `word_filter`).
"""

from __future__ import annotations

from sojourn.word_filter import WordAction, WordRule

DEFAULT_WORD_RULES: tuple[WordRule, ...] = (
    *(
        WordRule(pattern)
        for pattern in (
            "nsfw",
            "nude",
            "nudes",
            "naked",
            "nudity",
            "*porn*",
            "hentai",
            "sex",
            "sexy",
            "xxx",
            "topless",
            "nipples",
            "genitals",
            "penis",
            "vagina",
            "erotic",
            "fetish",
            "loli",
            "shota",
            "child abuse",
        )
    ),
    *(WordRule(pattern, WordAction.WARN) for pattern in ("gore", "gory", "lingerie", "bikini")),
)
