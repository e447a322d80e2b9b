"""The music site as a state machine over Eventsim's pages and auth states.

A state is (page, auth). From each state a weighted choice picks the next state or the end
of the session. Level (free/paid) gates the Upgrade and Downgrade pages. The weights follow
the shape of Eventsim's example configuration: mostly NextSong, rare upgrades, downgrades
and cancellations, logins after Logged Out homes, registrations after Guest visits.
"""

from __future__ import annotations

from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate
from random import Random
from typing import Generic, TypeVar

from beatlytica.events import AUTH_STATES, LEVELS, PAGES

GUEST, LOGGED_IN, LOGGED_OUT, CANCELLED = AUTH_STATES
FREE, PAID = LEVELS
END = None  # the "session ends" target

#: the HTTP method and status of each page, as Eventsim writes them
PAGE_HTTP: dict[str, tuple[str, int]] = {
    "Home": ("GET", 200),
    "NextSong": ("PUT", 200),
    "Login": ("PUT", 307),
    "Logout": ("PUT", 307),
    "Register": ("GET", 200),
    "Submit Registration": ("PUT", 307),
    "Upgrade": ("GET", 200),
    "Submit Upgrade": ("PUT", 307),
    "Downgrade": ("GET", 200),
    "Submit Downgrade": ("PUT", 307),
    "Settings": ("GET", 200),
    "Save Settings": ("PUT", 307),
    "Cancel": ("PUT", 307),
    "Cancellation Confirmation": ("GET", 200),
    "Help": ("GET", 200),
    "About": ("GET", 200),
    "Error": ("GET", 404),
}
assert set(PAGE_HTTP) == set(PAGES), "every Eventsim page needs its method and status"

State = tuple[str, str]  # (page, auth)
Target = State | None
#: a choice's outcome: a State where the choice cannot end the session, else a Target
_T = TypeVar("_T", bound=Target)

#: first page of a session, by the user's persistent auth state
SESSION_START: dict[str, list[tuple[State, float]]] = {
    LOGGED_IN: [
        (("Home", LOGGED_IN), 40),
        (("NextSong", LOGGED_IN), 55),
        (("About", LOGGED_IN), 1),
        (("Help", LOGGED_IN), 2),
        (("Settings", LOGGED_IN), 1.5),
        (("Error", LOGGED_IN), 0.5),
    ],
    LOGGED_OUT: [
        (("Home", LOGGED_OUT), 85),
        (("About", LOGGED_OUT), 5),
        (("Help", LOGGED_OUT), 5),
        (("Login", LOGGED_OUT), 4),
        (("Error", LOGGED_OUT), 1),
    ],
    GUEST: [
        (("Home", GUEST), 70),
        (("About", GUEST), 10),
        (("Help", GUEST), 5),
        (("Register", GUEST), 14),
        (("Error", GUEST), 1),
    ],
}

_IN = LOGGED_IN
TRANSITIONS: dict[State, list[tuple[Target, float]]] = {
    # --- logged in ----------------------------------------------------------------------
    ("Home", _IN): [
        (("NextSong", _IN), 70),
        (("Home", _IN), 2),
        (("About", _IN), 1),
        (("Help", _IN), 2),
        (("Settings", _IN), 3),
        (("Upgrade", _IN), 3),
        (("Downgrade", _IN), 1),
        (("Logout", _IN), 1.5),
        (("Error", _IN), 0.2),
        (END, 16),
    ],
    ("NextSong", _IN): [
        (("NextSong", _IN), 85),
        (("Home", _IN), 4),
        (("Help", _IN), 0.4),
        (("Settings", _IN), 0.6),
        (("Upgrade", _IN), 1),
        (("Downgrade", _IN), 0.4),
        (("Logout", _IN), 0.6),
        (("Error", _IN), 0.1),
        (END, 7),
    ],
    ("About", _IN): [(("Home", _IN), 40), (("NextSong", _IN), 40), (END, 20)],
    ("Help", _IN): [
        (("Home", _IN), 40),
        (("NextSong", _IN), 35),
        (("Help", _IN), 5),
        (("Settings", _IN), 5),
        (END, 15),
    ],
    ("Settings", _IN): [
        (("Save Settings", _IN), 30),
        (("Home", _IN), 30),
        (("NextSong", _IN), 25),
        (("Cancel", _IN), 3),
        (END, 12),
    ],
    ("Save Settings", _IN): [(("Home", _IN), 50), (("NextSong", _IN), 40), (END, 10)],
    ("Upgrade", _IN): [
        (("Submit Upgrade", _IN), 35),
        (("Home", _IN), 35),
        (("NextSong", _IN), 25),
        (END, 5),
    ],
    ("Submit Upgrade", _IN): [(("Home", _IN), 100)],
    ("Downgrade", _IN): [
        (("Submit Downgrade", _IN), 25),
        (("Home", _IN), 35),
        (("NextSong", _IN), 35),
        (END, 5),
    ],
    ("Submit Downgrade", _IN): [(("Home", _IN), 100)],
    ("Cancel", _IN): [(("Cancellation Confirmation", CANCELLED), 90), (("Home", _IN), 10)],
    ("Cancellation Confirmation", CANCELLED): [(END, 100)],
    ("Logout", _IN): [(("Home", LOGGED_OUT), 100)],
    ("Error", _IN): [(("Home", _IN), 60), (("NextSong", _IN), 20), (END, 20)],
    # --- logged out ---------------------------------------------------------------------
    ("Home", LOGGED_OUT): [
        (("Login", LOGGED_OUT), 55),
        (("Home", LOGGED_OUT), 8),
        (("About", LOGGED_OUT), 8),
        (("Help", LOGGED_OUT), 8),
        (("Error", LOGGED_OUT), 1),
        (END, 20),
    ],
    # a login leads to a logged-in Home; one in thirty fails
    ("Login", LOGGED_OUT): [(("Home", _IN), 29), (("Home", LOGGED_OUT), 1)],
    ("About", LOGGED_OUT): [(("Home", LOGGED_OUT), 60), (("Login", LOGGED_OUT), 20), (END, 20)],
    ("Help", LOGGED_OUT): [(("Home", LOGGED_OUT), 60), (("Login", LOGGED_OUT), 20), (END, 20)],
    ("Error", LOGGED_OUT): [(("Home", LOGGED_OUT), 70), (END, 30)],
    # --- guests -------------------------------------------------------------------------
    ("Home", GUEST): [
        (("Register", GUEST), 30),
        (("Home", GUEST), 10),
        (("About", GUEST), 10),
        (("Help", GUEST), 5),
        (("Error", GUEST), 1),
        (END, 44),
    ],
    ("Register", GUEST): [(("Submit Registration", _IN), 70), (("Home", GUEST), 20), (END, 10)],
    ("Submit Registration", _IN): [(("Home", _IN), 100)],
    ("About", GUEST): [(("Home", GUEST), 50), (("Register", GUEST), 20), (END, 30)],
    ("Help", GUEST): [(("Home", GUEST), 50), (("Register", GUEST), 20), (END, 30)],
    ("Error", GUEST): [(("Home", GUEST), 60), (END, 40)],
}

#: pages only one level can reach
LEVEL_ONLY = {"Upgrade": FREE, "Submit Upgrade": FREE, "Downgrade": PAID, "Submit Downgrade": PAID}


@dataclass(frozen=True)
class Choice(Generic[_T]):
    """A compiled weighted choice: cumulative weights and their targets."""

    cumulative: tuple[float, ...]
    targets: tuple[_T, ...]

    def pick(self, rng: Random) -> _T:
        return self.targets[bisect(self.cumulative, rng.random() * self.cumulative[-1])]


def _compile(options: list[tuple[_T, float]], level: str) -> Choice[_T]:
    kept = [
        (target, weight)
        for target, weight in options
        if target is None or LEVEL_ONLY.get(target[0], level) == level
    ]
    return Choice(tuple(accumulate(w for _, w in kept)), tuple(t for t, _ in kept))


def compile_site() -> tuple[
    dict[tuple[str, str], Choice[State]], dict[tuple[str, str, str], Choice[Target]]
]:
    """(session starts by (auth, level), transitions by (page, auth, level))."""
    starts = {
        (auth, level): _compile(options, level)
        for auth, options in SESSION_START.items()
        for level in LEVELS
    }
    transitions = {
        (page, auth, level): _compile(options, level)
        for (page, auth), options in TRANSITIONS.items()
        for level in LEVELS
    }
    return starts, transitions
