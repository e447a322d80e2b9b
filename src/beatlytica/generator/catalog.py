"""The song catalogue: artists, titles and durations, generated deterministically.

The catalogue does not depend on the run's seed, so every run (and every producer replica)
plays from the same songs and the warehouse's song and artist dimensions stay stable.
Popularity is Zipf-like: the song of rank r is played in proportion to 1 / r**ZIPF_EXPONENT.

Like the Million Song Dataset subset behind Eventsim's songs, the catalogue is mostly English
with a share of artists from elsewhere (``data/world_music.json``: Nordic, German, French,
Spanish, Icelandic and Japanese names, made up). Eventsim's song file also holds some songs
double-encoded ("mojibake": the UTF-8 bytes of the text read as Latin-1, ``Ã¤`` for ``ä``), so
one artist can show up under two spellings; :meth:`Catalogue.with_mojibake` reproduces that for
a share of the songs.
"""

from __future__ import annotations

import json
import random
from bisect import bisect
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from itertools import accumulate

CATALOGUE_SEED = 20_151_216
#: the international artists and the double-encoding draws have random streams of their own:
#: the English artist names are the draws they were before data/world_music.json existed
WORLD_SEED = CATALOGUE_SEED + 1
MOJIBAKE_SEED = CATALOGUE_SEED + 2
ZIPF_EXPONENT = 1.07
N_ARTISTS = 2_500
N_SONGS = 25_000
#: share of the artists who come from data/world_music.json
WORLD_ARTIST_SHARE = 0.2
#: share of an international artist's songs titled in the artist's language (the rest English)
WORLD_TITLE_SHARE = 0.7
#: share of the songs stored double-encoded. Only text with non-ASCII letters changes (one song
#: in eight has some) and the Zipf draw favours a few songs, mostly English: half the songs come
#: to 5.0% of the listens, Eventsim's figure (tests/unit/test_generator.py holds it there)
DEFAULT_MOJIBAKE_SONG_SHARE = 0.5

_ADJECTIVES = (
    "Velvet Electric Silent Golden Broken Midnight Crimson Wild Hollow Neon Paper Lonely "
    "Burning Frozen Distant Sacred Restless Blue Silver Wandering Little Northern Southern "
    "Painted Faded Howling Secret Lucky Rusty Glass Iron Copper Gentle Savage Shining "
    "Drifting Hidden Falling Rising Endless Sleepy Bright Dark Strange Sweet Bitter"
).split()
_NOUNS = (
    "Echoes Wolves Rivers Pilots Foxes Lanterns Machines Hearts Ghosts Satellites Horses "
    "Kings Sparrows Tigers Shadows Lights Mountains Oceans Dreamers Strangers Angels "
    "Giants Cowboys Ravens Sirens Mirrors Harbors Comets Engines Orchards Rebels Saints "
    "Thieves Poets Sailors Drums Bells Waves Flames Roses Stones Storms Winters Summers"
).split()
_FIRST = (
    "Mara Jonah Elise Theo Nina Rafael Ivy Otis Lena Marco June Silas Cleo Arlo Vera Hugo "
    "Tess Milo Iris Felix Ada Jude Rosa Emil Nell Ezra Opal Luca Wren Abel"
).split()
_LAST = (
    "Hart Vale Quinn Rowe Lake Stone Frost Wells Marsh Reyes Bloom Cross Sky Fox Knight "
    "Lowe Rivers Snow Woods Gray Holt Shaw Rhodes Bishop Cole Lark Moon Pike Ward Reed"
).split()
_TITLE_WORDS = (
    "Love Night Heart Fire Rain Home Road Dream Light Gold Summer River Ocean Sky Star Blue "
    "Dance Run Fall Rise Shadow Wild Young Forever Tonight Tomorrow Yesterday Morning City "
    "Highway Stranger Angel Ghost Paradise Thunder Silence Echo Mirror Window Garden Moon "
    "Sun Storm Wave Heaven Desert Island Train Letter Secret Promise Memory Color Kiss"
).split()
_TITLE_FORMS = (
    "{a}",
    "{a} {b}",
    "The {a}",
    "{a} of {b}",
    "{a} in the {b}",
    "My {a}",
    "{a} and {b}",
    "No More {a}",
    "Little {a}",
    "{a} ({b} Remix)",
    "Don't Stop the {a}",
    "{a} Again",
)
#: forms of a title in the artist's language, the versions a song file lists
_WORLD_TITLE_FORMS = (
    "{t}",
    "{t}",
    "{t}",
    "{t}",
    "{t} (Album Version)",
    "{t} (Live)",
    "{t} (Radio Edit)",
    "{t} ({year} Remaster)",
)


@dataclass(frozen=True)
class Song:
    rank: int
    artist: str
    title: str
    duration: float
    #: the ``"artist":…,"song":…,"duration":…`` JSON fragment, escaped once
    json: str
    #: a uniform draw fixed per song: the song is stored double-encoded when the mojibake share
    #: exceeds it (so a larger share garbles the same songs and more)
    mojibake_draw: float = 1.0

    def with_mojibake(self) -> Song:
        """The song as a double-encoded song file holds it (itself if its text is ASCII)."""
        artist, title = mojibake(self.artist), mojibake(self.title)
        if (artist, title) == (self.artist, self.title):
            return self
        return replace(
            self, artist=artist, title=title, json=_fragment(artist, title, self.duration)
        )


def mojibake(text: str) -> str:
    """``text`` double-encoded: its UTF-8 bytes read as Latin-1 (``"ä"`` -> ``"Ã¤"``)."""
    return text.encode("utf-8").decode("latin-1")


def _fragment(artist: str, title: str, duration: float) -> str:
    return f'"artist":{json.dumps(artist)},"song":{json.dumps(title)},"duration":{duration!r}'


class Catalogue:
    """Songs ordered by popularity rank, with a sampler that honours the Zipf weights."""

    def __init__(self, songs: tuple[Song, ...], cumulative: list[float] | None = None) -> None:
        self.songs = songs
        self._cumulative = cumulative or list(
            accumulate(1.0 / (s.rank**ZIPF_EXPONENT) for s in songs)
        )
        self._total = self._cumulative[-1]

    def pick(self, rng: random.Random) -> Song:
        i = bisect(self._cumulative, rng.random() * self._total)
        return self.songs[min(i, len(self.songs) - 1)]

    def weight(self, rank: int) -> float:
        """The probability of drawing the song of a given rank."""
        # typeshed types a power with a float exponent as Any (a negative base gives a complex)
        weight: float = (1.0 / rank**ZIPF_EXPONENT) / self._total
        return weight

    def with_mojibake(self, share: float) -> Catalogue:
        """The catalogue as played: songs whose draw falls under ``share`` double-encoded."""
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"the mojibake song share must be in [0, 1], found {share}")
        songs = tuple(s.with_mojibake() if s.mojibake_draw < share else s for s in self.songs)
        return Catalogue(songs, self._cumulative)


def _artist_name(rng: random.Random) -> str:
    form = rng.random()
    if form < 0.5:
        return f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    if form < 0.8:
        return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"


@dataclass(frozen=True)
class _Language:
    solo_format: str
    first: tuple[str, ...]
    last: tuple[str, ...]
    bands: tuple[str, ...]
    titles: tuple[str, ...]

    def artist(self, rng: random.Random) -> str:
        if rng.random() < 0.25:
            return rng.choice(self.bands)
        return self.solo_format.format(first=rng.choice(self.first), last=rng.choice(self.last))

    def title(self, rng: random.Random) -> str:
        form = rng.choice(_WORLD_TITLE_FORMS)
        return form.format(t=rng.choice(self.titles), year=rng.randint(1995, 2012))


@lru_cache(maxsize=1)
def world_languages() -> tuple[_Language, ...]:
    """The languages of data/world_music.json, in file order."""
    path = resources.files("beatlytica.generator").joinpath("data/world_music.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    return tuple(
        _Language(
            lang["solo_format"],
            *(tuple(lang[k]) for k in ("first", "last", "bands", "titles")),
        )
        for lang in data["languages"].values()
    )


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The catalogue, every song spelt correctly (see :meth:`Catalogue.with_mojibake`)."""
    rng = random.Random(CATALOGUE_SEED)
    world = random.Random(WORLD_SEED)
    languages = world_languages()
    artists: list[str] = []
    seen: set[str] = set()
    while len(artists) < N_ARTISTS:
        name = _artist_name(rng)
        if name not in seen:
            seen.add(name)
            artists.append(name)
    # international artists take over some slots, popular ones as well as obscure ones
    language_of: dict[str, _Language] = {}
    for i in range(N_ARTISTS):
        if world.random() < WORLD_ARTIST_SHARE:
            language = world.choice(languages)
            name = language.artist(world)
            if name not in seen:
                seen.add(name)
                artists[i] = name
                language_of[name] = language
    songs: list[Song] = []
    titles: set[tuple[str, str]] = set()
    while len(songs) < N_SONGS:
        # popular artists have more songs: pick the artist with a skew of its own
        artist = artists[min(int(rng.paretovariate(1.2)) - 1, N_ARTISTS - 1) % N_ARTISTS]
        artist = artist if rng.random() < 0.6 else rng.choice(artists)
        title = rng.choice(_TITLE_FORMS).format(
            a=rng.choice(_TITLE_WORDS), b=rng.choice(_TITLE_WORDS)
        )
        artist_language = language_of.get(artist)
        if artist_language is not None and world.random() < WORLD_TITLE_SHARE:
            title = artist_language.title(world)
        if (artist, title) in titles:
            continue
        titles.add((artist, title))
        duration = round(min(max(rng.lognormvariate(5.45, 0.28), 60.0), 900.0), 5)
        songs.append(
            Song(len(songs) + 1, artist, title, duration, _fragment(artist, title, duration))
        )
    draws = random.Random(MOJIBAKE_SEED)
    return Catalogue(tuple(replace(s, mojibake_draw=draws.random()) for s in songs))
