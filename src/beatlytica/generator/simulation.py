"""The simulation engine: users, sessions and the events they emit, in time order.

Like Eventsim, every user lives on a priority queue keyed by the time of their next event;
popping the earliest user and advancing their session yields one request at a time in global
time order, which is what a real-time producer needs. Sessions start by a Poisson process
thinned by a daily and weekly activity curve; inside a session the site's state machine
(:mod:`beatlytica.generator.site`) picks the pages.

The engine is pure: it yields ``(topic, key, json_line)`` and never sleeps or writes.
Output is a deterministic function of :class:`SimulationConfig`.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from beatlytica.generator.catalog import DEFAULT_MOJIBAKE_SONG_SHARE, catalogue
from beatlytica.generator.population import DEFAULT_QUOTED_USER_AGENT_SHARE, Person, make_person
from beatlytica.generator.site import (
    CANCELLED,
    FREE,
    GUEST,
    LOGGED_IN,
    LOGGED_OUT,
    PAGE_HTTP,
    PAID,
    compile_site,
)
from beatlytica.timeparse import to_epoch_ms

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000
#: ids of one instance (producer replica) live in their own block, so replicas never collide
INSTANCE_ID_BLOCK = 1 << 32

# activity by UTC hour of day and by weekday (Monday first); each averages to 1
_HOURLY = (
    0.45,
    0.30,
    0.22,
    0.18,
    0.18,
    0.25,
    0.45,
    0.75,
    0.95,
    1.05,
    1.10,
    1.15,
    1.20,
    1.20,
    1.15,
    1.15,
    1.20,
    1.35,
    1.50,
    1.60,
    1.60,
    1.45,
    1.15,
    0.80,
)
HOURLY_ACTIVITY = tuple(h * 24 / sum(_HOURLY) for h in _HOURLY)
_WEEKLY = (1.04, 1.03, 1.04, 1.05, 1.08, 0.90, 0.86)
WEEKLY_ACTIVITY = tuple(d * 7 / sum(_WEEKLY) for d in _WEEKLY)
_PEAK_ACTIVITY = max(HOURLY_ACTIVITY) * max(WEEKLY_ACTIVITY)


def activity(ts_ms: int) -> float:
    """Relative activity at a moment: hourly curve times weekday curve (1970-01-01 = Thu)."""
    hour = (ts_ms // MS_PER_HOUR) % 24
    weekday = (ts_ms // MS_PER_DAY + 3) % 7
    return HOURLY_ACTIVITY[hour] * WEEKLY_ACTIVITY[weekday]


@dataclass(frozen=True)
class SimulationConfig:
    users: int
    start: datetime
    end: datetime | None  # None: run for ever (real-time producer)
    seed: int
    #: producer replica number; its user and session ids live in their own id block
    instance: int = 0
    sessions_per_day: float = 1.0
    guest_share: float = 0.05
    logged_out_share: float = 0.10
    paid_share: float = 0.20
    # Eventsim's quirks (on by default: the pipeline must take Eventsim's output as it is)
    #: share of users whose userAgent is wrapped in literal double quotes on every event
    quoted_user_agent_share: float = DEFAULT_QUOTED_USER_AGENT_SHARE
    #: share of the catalogue's songs whose artist and title are double-encoded UTF-8
    mojibake_song_share: float = DEFAULT_MOJIBAKE_SONG_SHARE
    #: Eventsim's --tag: written as "tag" after the user details (identified events only);
    #: None or empty: no tag field
    tag: str | None = None

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError(f"users must be at least 1, found {self.users}")
        if self.end is not None and self.end <= self.start:
            raise ValueError(
                f"end ({self.end.isoformat()}) must be after start ({self.start.isoformat()})"
            )
        if not 0 <= self.instance < 2**20:
            raise ValueError(f"instance must be in [0, 2**20), found {self.instance}")
        if self.sessions_per_day <= 0:
            raise ValueError(f"sessions_per_day must be positive, found {self.sessions_per_day}")
        for name in ("quoted_user_agent_share", "mojibake_song_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], found {getattr(self, name)}")


class _User:
    __slots__ = (
        "auth",
        "gap_ms",
        "identity",
        "in_session",
        "item",
        "level",
        "page",
        "page_auth",
        "person",
        "session_id",
        "session_rate",
    )

    def __init__(
        self,
        person: Person,
        identity: str | None,
        auth: str,
        level: str,
        session_rate: float,
        gap_ms: float,
    ) -> None:
        self.person = person
        self.identity = identity  # the identity JSON fragment once registered
        self.auth = auth  # auth state a new session starts in
        self.level = level
        self.session_rate = session_rate  # sessions per millisecond at average activity
        self.gap_ms = gap_ms  # mean think time between non-song requests
        self.in_session = False
        self.session_id = 0
        self.item = 0
        self.page = ""
        self.page_auth = ""


class Simulation:
    """Iterate over it for ``(topic, key, json_line)`` in non-decreasing ``ts`` order."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        # replicas share the seed and differ by instance: distinct, reproducible streams
        self.rng = random.Random(config.seed * 2**20 + config.instance)
        # the quirks draw from a stream of their own: the rest of a user is the same either way
        self._quote_rng = random.Random(f"user-agent-quotes:{config.seed}:{config.instance}")
        self.catalogue = catalogue().with_mojibake(config.mojibake_song_share)
        #: what follows the user details of identified events: Eventsim's tag, if any
        self._identity_tail = f',"tag":{json.dumps(config.tag)}' if config.tag else ""
        self.starts, self.transitions = compile_site()
        self.start_ms = to_epoch_ms(config.start)
        self.end_ms = to_epoch_ms(config.end) if config.end else math.inf
        #: simulated time of the event last yielded (the runner paces real time by it)
        self.clock_ms = self.start_ms
        base = config.instance * INSTANCE_ID_BLOCK
        self._next_session_id = base + 1
        self.users = [self._make_user(base + i + 1) for i in range(config.users)]

    def _make_user(self, user_id: int) -> _User:
        rng, cfg = self.rng, self.config
        quoted = self._quote_rng.random() < cfg.quoted_user_agent_share
        person = make_person(rng, user_id, quote_agent=quoted)
        if rng.random() < cfg.guest_share:
            identity, auth = None, GUEST
        else:
            registered = self.start_ms - rng.randint(MS_PER_DAY, 3 * 365 * MS_PER_DAY)
            identity = person.identity_json(registered, self._identity_tail)
            auth = LOGGED_OUT if rng.random() < cfg.logged_out_share else LOGGED_IN
        level = PAID if auth != GUEST and rng.random() < cfg.paid_share else FREE
        # heavy and light listeners: lognormal around the configured mean
        rate = cfg.sessions_per_day * rng.lognormvariate(-0.32, 0.8) / MS_PER_DAY
        gap = rng.lognormvariate(math.log(25_000), 0.4)
        return _User(person, identity, auth, level, rate, gap)

    def _next_session_start(self, after_ms: float, user: _User) -> float:
        """Thinning: candidate arrivals at peak rate, kept in proportion to activity."""
        rng = self.rng
        peak_rate = user.session_rate * _PEAK_ACTIVITY
        t = after_ms
        while True:
            t += rng.expovariate(peak_rate)
            if t >= self.end_ms or rng.random() * _PEAK_ACTIVITY < activity(int(t)):
                return t

    def __iter__(self) -> Iterator[tuple[str, int, str]]:
        rng = self.rng
        users = self.users
        end_ms = self.end_ms
        starts, transitions = self.starts, self.transitions
        pick_song = self.catalogue.pick
        expovariate = rng.expovariate
        heappush, heappop = heapq.heappush, heapq.heappop
        page_parts = {
            (page, auth): f'"page":"{page}","auth":"{auth}","method":"{m}","status":{s},'
            for page, (m, s) in PAGE_HTTP.items()
            for auth in (GUEST, LOGGED_IN, LOGGED_OUT, CANCELLED)
        }

        queue: list[tuple[float, int]] = [
            (self._next_session_start(self.start_ms, u), i) for i, u in enumerate(users)
        ]
        heapq.heapify(queue)
        while queue:
            t, index = heappop(queue)
            if t >= end_ms:
                return  # the queue is time-ordered: everyone else is later still
            user = users[index]
            ts = int(t)
            self.clock_ms = ts
            previous_page = user.page
            if user.in_session:
                target = transitions[(user.page, user.page_auth, user.level)].pick(rng)
                if target is None:  # the session ends
                    user.in_session = False
                    user.page = ""
                    heappush(queue, (self._next_session_start(t, user), index))
                    continue
                user.item += 1
            else:
                target = starts[(user.auth, user.level)].pick(rng)
                user.in_session = True
                user.session_id = self._next_session_id
                self._next_session_id += 1
                user.item = 0
                previous_page = ""
            page, auth = target
            user.page, user.page_auth = page, auth
            if page == "Submit Registration":
                user.identity = user.person.identity_json(ts, self._identity_tail)

            sid = user.session_id
            level = user.level
            identified = auth in (LOGGED_IN, CANCELLED)
            head = f'{{"ts":{ts},"sessionId":{sid},'
            tail = f'"level":"{level}","itemInSession":{user.item},{user.person.device_json}'
            if identified:
                tail = f"{tail},{user.identity}"
                key = user.person.user_id
            else:
                key = sid

            if page == "NextSong":
                song = pick_song(rng)
                yield (
                    "listen_events",
                    key,
                    f'{{{song.json},"ts":{ts},"sessionId":{sid},"auth":"{auth}",{tail}}}',
                )
                yield "page_view_events", key, f"{head}{page_parts[target]}{tail},{song.json}}}"
                t += song.duration * 1000.0
            else:
                if previous_page == "Login":
                    success = "true" if auth == LOGGED_IN else "false"
                    yield "auth_events", key, f'{head}{tail},"success":{success}}}'
                if page == "Submit Upgrade" or page == "Submit Downgrade":
                    # Eventsim writes the level before the change
                    yield "status_change_events", key, f'{head}"auth":"{auth}",{tail}}}'
                    user.level = PAID if page == "Submit Upgrade" else FREE
                yield "page_view_events", key, f"{head}{page_parts[target]}{tail}}}"
                t += expovariate(1.0 / user.gap_ms)

            if auth == CANCELLED:
                user.in_session = False  # churned: never scheduled again
                continue
            if auth != GUEST:
                user.auth = auth  # a logout or login carries over to the next session
            heappush(queue, (t, index))
