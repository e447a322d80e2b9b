"""The song catalogue: artists, titles and durations, generated deterministically.

The catalogue does not depend on the run's seed, so every run (and every producer replica)
plays from the same songs and the warehouse's song and artist dimensions stay stable.
Popularity is Zipf-like: the song of rank r is played in proportion to 1 / r**ZIPF_EXPONENT.
"""

from __future__ import annotations

import json
import random
from bisect import bisect
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

CATALOGUE_SEED = 20_151_216
ZIPF_EXPONENT = 1.07
N_ARTISTS = 2_500
N_SONGS = 25_000

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


@dataclass(frozen=True)
class Song:
    rank: int
    artist: str
    title: str
    duration: float
    #: the ``"artist":…,"song":…,"duration":…`` JSON fragment, escaped once
    json: str


class Catalogue:
    """Songs ordered by popularity rank, with a sampler that honours the Zipf weights."""

    def __init__(self, songs: tuple[Song, ...]) -> None:
        self.songs = songs
        self._cumulative = list(accumulate(1.0 / (s.rank**ZIPF_EXPONENT) for s in songs))
        self._total = self._cumulative[-1]

    def pick(self, rng: random.Random) -> Song:
        i = bisect(self._cumulative, rng.random() * self._total)
        return self.songs[min(i, len(self.songs) - 1)]

    def weight(self, rank: int) -> float:
        """The probability of drawing the song of a given rank."""
        return (1.0 / rank**ZIPF_EXPONENT) / self._total


def _artist_name(rng: random.Random) -> str:
    form = rng.random()
    if form < 0.5:
        return f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    if form < 0.8:
        return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    rng = random.Random(CATALOGUE_SEED)
    artists: list[str] = []
    seen: set[str] = set()
    while len(artists) < N_ARTISTS:
        name = _artist_name(rng)
        if name not in seen:
            seen.add(name)
            artists.append(name)
    songs: list[Song] = []
    titles: set[tuple[str, str]] = set()
    while len(songs) < N_SONGS:
        # popular artists have more songs: pick the artist with a skew of its own
        artist = artists[min(int(rng.paretovariate(1.2)) - 1, N_ARTISTS - 1) % N_ARTISTS]
        artist = artist if rng.random() < 0.6 else rng.choice(artists)
        title = rng.choice(_TITLE_FORMS).format(
            a=rng.choice(_TITLE_WORDS), b=rng.choice(_TITLE_WORDS)
        )
        if (artist, title) in titles:
            continue
        titles.add((artist, title))
        duration = round(min(max(rng.lognormvariate(5.45, 0.28), 60.0), 900.0), 5)
        fragment = (
            f'"artist":{json.dumps(artist)},"song":{json.dumps(title)},"duration":{duration!r}'
        )
        songs.append(Song(len(songs) + 1, artist, title, duration, fragment))
    return Catalogue(tuple(songs))
