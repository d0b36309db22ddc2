"""English words that contain a word a server may block, and must pass a list that blocks it.

Keyed by the blocked word; every word in its tuple holds it as a substring (a test checks that),
so a filter that matches inside words (the Scunthorpe problem) fails on it.
"""

from __future__ import annotations

INNOCENT_WORDS: dict[str, tuple[str, ...]] = {
    "ass": (
        "assassin", "assassinate", "bass", "bassoon", "brass", "class", "classic", "classroom",
        "compass", "embassy", "ambassador", "glass", "hourglass", "grass", "grasshopper", "harass",
        "lass", "lasso", "mass", "massage", "massive", "amass", "pass", "passage", "passenger",
        "passion", "passport", "bypass", "surpass", "trespass", "assemble", "assembly", "assert",
        "assess", "asset", "assign", "assist", "assistant", "associate", "assorted", "assume",
        "assure", "carcass", "cassette", "chassis", "crass", "cuirass", "molasses", "morass",
        "sassafras", "tassel", "Picasso", "Manassas", "Massachusetts",
    ),
    "cock": (
        "cocktail", "cockpit", "cockroach", "peacock", "Hancock", "cockatoo", "shuttlecock",
        "cockerel", "woodcock", "cockle", "cockney", "stopcock", "weathercock", "Hitchcock",
        "Babcock", "cocky",
    ),
    "rapist": (
        "therapist", "physiotherapist", "psychotherapist", "aromatherapist", "hypnotherapist",
        "radiotherapist",
    ),
    "cum": (
        "cumulus", "cumulative", "cucumber", "document", "documentary", "circumstance", "accumulate",
        "cumin", "cumbersome", "incumbent", "succumb", "Cumberland", "Cumbria", "circumference",
        "circumnavigate", "modicum", "talcum", "cummerbund",
    ),
    "tit": (
        "title", "subtitle", "entitle", "titan", "titanic", "titanium", "petition", "competition",
        "competitive", "appetite", "constitution", "institute", "attitude", "altitude", "gratitude",
        "latitude", "multitude", "aptitude", "destitute", "substitute",
        "restitution", "partition", "repetition", "repetitive", "quantity", "entity", "identity",
        "stitch", "titmouse", "tithe", "titular", "superstition", "practitioner", "petite",
        "antitrust", "Titicaca",
    ),
    "sex": ("sextant", "sextet", "sexton", "sextuple", "Sussex", "Essex", "Middlesex", "Wessex", "unisex"),
    "anal": (
        "analysis", "analyst", "analytics", "analyze", "analog", "analogy", "analgesic", "canal",
        "banal", "banality", "bacchanal", "psychoanalysis", "analemma",
    ),
    "nazi": ("Ashkenazi", "Nazirite"),
    "rape": (
        "grape", "grapefruit", "grapevine", "drape", "drapery", "scrape", "scraper", "skyscraper",
        "trapeze", "trapezoid", "parapet", "therapeutic", "crape",
    ),
    "hell": (
        "shell", "shellfish", "shellac", "eggshell", "seashell", "nutshell", "bombshell", "clamshell",
        "tortoiseshell", "hello", "Michelle", "Mitchell", "Rochelle", "hellebore", "Othello",
        "Hellenic", "Hellenistic", "Hellespont", "Seychelles",
    ),
    "cunt": ("Scunthorpe",),
    "dick": ("Dickens", "Dickensian", "Dickinson", "Benedick", "dickcissel"),
    "spic": (
        "spice", "spiced", "spicy", "allspice", "aspic", "conspicuous", "inconspicuous", "auspicious",
        "despicable", "perspicacious", "suspicion", "suspicious", "spicule",
    ),
    "coon": ("cocoon", "raccoon", "tycoon", "coonhound"),
    "homo": ("homogeneous", "homogenize", "homonym", "homophone", "homograph", "homologous", "homozygous"),
    "jap": ("Japan", "Japanese", "japonica", "jape"),
    "crap": ("scrap", "scrapbook", "scrappy", "scrapyard", "crappie"),
    "butt": (
        "button", "buttonhole", "butter", "buttercup", "butterfly", "buttermilk", "butterscotch",
        "buttress", "rebuttal", "butte", "abutting",
    ),
    "arse": (
        "parse", "sparse", "coarse", "hoarse", "arsenal", "arsenic", "parsec", "Marseille",
    ),
    "bum": ("album", "albumen", "bumblebee", "bump", "bumper", "bumpkin"),
    "hoe": ("shoe", "shoelace", "horseshoe", "snowshoe", "hoedown", "Phoebe"),
    "wank": ("swank", "swanky"),
    "pedo": ("torpedo", "pedometer"),
    "anus": ("Janus", "manuscript", "Uranus", "tetanus"),
    "semen": ("basement", "casement", "easement"),
    "pee": ("speed", "speech", "peel", "peek", "peer", "peeve", "toupee", "teepee"),
    "fart": ("farther", "farthing"),
    "turd": ("Saturday", "sturdy"),
    "suck": ("honeysuckle",),
    "lust": ("cluster", "illustrate", "illustration", "luster", "lustre", "lustrous", "bluster"),
    "meth": ("method", "methodical", "something", "methane", "methyl", "Prometheus"),
    "weed": ("tweed", "seaweed"),
    "heroin": ("heroine",),
    "kill": ("skill", "skillet", "skillful", "killdeer", "Killarney"),
    "naked": ("snaked",),
    "nude": ("denude",),
}  # fmt: skip

BLOCKED_WORDS: tuple[str, ...] = tuple(INNOCENT_WORDS)
