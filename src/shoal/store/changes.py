"""Change notifications: after a transaction that changed an app (or its deployments) commits,
the store tells its subscribers which app. shoal's own process is the only writer of app state,
so readers may keep what they assembled until they hear of a change."""

from __future__ import annotations

from collections.abc import Callable


class ChangeFeed:
    def __init__(self) -> None:
        self._subscribers: list[Callable[[str], None]] = []

    def subscribe(self, subscriber: Callable[[str], None]) -> None:
        self._subscribers.append(subscriber)

    def emit(self, app_id: str) -> None:
        for subscriber in self._subscribers:
            subscriber(app_id)
