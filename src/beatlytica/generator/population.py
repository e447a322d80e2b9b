"""The simulated population: names, places and devices, all shipped with the package."""

from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

FIRST_NAMES_F = (
    "Emma Olivia Ava Sophia Isabella Mia Charlotte Amelia Harper Evelyn Abigail Emily "
    "Elizabeth Sofia Avery Ella Madison Scarlett Victoria Aria Grace Chloe Camila Penelope "
    "Riley Layla Lillian Nora Zoey Mila Aubrey Hannah Lily Addison Eleanor Natalie Luna "
    "Savannah Brooklyn Leah Zoe Stella Hazel Ellie Paisley Audrey Skylar Violet Claire Bella "
    "Aurora Lucy Anna Samantha Caroline Genesis Aaliyah Kennedy Kinsley Allison Maya Sarah "
    "Madelyn Adeline Alexa Ariana Elena Gabriella Naomi Alice Sadie Hailey Eva Emilia Autumn"
).split()
FIRST_NAMES_M = (
    "Liam Noah William James Oliver Benjamin Elijah Lucas Mason Logan Alexander Ethan Jacob "
    "Michael Daniel Henry Jackson Sebastian Aiden Matthew Samuel David Joseph Carter Owen "
    "Wyatt John Jack Luke Jayden Dylan Grayson Levi Isaac Gabriel Julian Mateo Anthony Jaxon "
    "Lincoln Joshua Christopher Andrew Theodore Caleb Ryan Asher Nathan Thomas Leo Isaiah "
    "Charles Josiah Hudson Christian Hunter Connor Eli Ezra Aaron Landon Adrian Jonathan "
    "Nolan Jeremiah Easton Elias Colton Cameron Carson Robert Angel Maverick Nicholas Dominic"
).split()
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter "
    "Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart "
    "Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed "
    "Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray "
    "Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez"
).split()
#: the agents as browsers send them; a share of the users has theirs wrapped in double quotes
#: (:func:`make_person`), as Eventsim's user-agent file stores most of them
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
)
#: relative share of each user agent (desktop Chrome leads, as in Eventsim's list)
USER_AGENT_WEIGHTS = (30, 14, 8, 16, 12, 9, 3, 4, 4)
#: share of users whose agent Eventsim writes wrapped in double quotes (73% of its events)
DEFAULT_QUOTED_USER_AGENT_SHARE = 0.73


@dataclass(frozen=True)
class Place:
    city: str
    state: str
    zip: str
    lat: float
    lon: float


@lru_cache(maxsize=1)
def places() -> tuple[tuple[Place, ...], tuple[float, ...]]:
    """US cities shipped with the package, with population weights."""
    text = resources.files("beatlytica.generator").joinpath("data/us_cities.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    return (
        tuple(
            Place(r["city"], r["state"], r["zip"], float(r["lat"]), float(r["lon"])) for r in rows
        ),
        tuple(float(r["population"]) for r in rows),
    )


@dataclass
class Person:
    """A simulated user's fixed attributes, pre-serialised into the JSON fragments Eventsim
    writes: the device part on every event, the identity part while identified."""

    user_id: int
    first_name: str
    last_name: str
    gender: str
    place: Place
    #: the agent as this user's events carry it: quoted or bare
    user_agent: str
    device_json: str

    def identity_json(self, registration_ms: int, tail: str = "") -> str:
        """The identity fragment; ``tail`` (``,"tag":…``) follows the user details, as in
        Eventsim."""
        return (
            f'"userId":{self.user_id},"lastName":{json.dumps(self.last_name)},'
            f'"firstName":{json.dumps(self.first_name)},"gender":"{self.gender}",'
            f'"registration":{registration_ms}{tail}'
        )


def make_person(rng: random.Random, user_id: int, *, quote_agent: bool = False) -> Person:
    """A user drawn from ``rng``; ``quote_agent`` wraps their agent in literal double quotes
    (``"\\"Mozilla/5.0 …\\""`` in the JSON), as Eventsim writes it for most users."""
    all_places, weights = places()
    place = rng.choices(all_places, weights)[0]
    gender = "F" if rng.random() < 0.5 else "M"
    first = rng.choice(FIRST_NAMES_F if gender == "F" else FIRST_NAMES_M)
    last = rng.choice(LAST_NAMES)
    agent = rng.choices(USER_AGENTS, USER_AGENT_WEIGHTS)[0]
    if quote_agent:
        agent = f'"{agent}"'
    # jitter within ~10 km so a city is a cloud of points, as in Eventsim's data
    lat = round(place.lat + rng.uniform(-0.08, 0.08), 4)
    lon = round(place.lon + rng.uniform(-0.08, 0.08) / max(math.cos(math.radians(lat)), 0.2), 4)
    device = (
        f'"zip":"{place.zip}","city":{json.dumps(place.city)},"state":"{place.state}",'
        f'"lat":{lat!r},"lon":{lon!r},"userAgent":{json.dumps(agent)}'
    )
    return Person(user_id, first, last, gender, place, agent, device)
