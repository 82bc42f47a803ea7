"""Reconnection delays: exponential backoff with full jitter, so clients cut off together do not return together."""

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay before attempt n (from 0): uniform in [floor, min(maximum, initial * factor**n)]."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    floor: float = 0.05  # never hammer the server with an immediate retry
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempt: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.floor <= self.initial <= self.maximum or self.factor < 1:
            raise ValueError("need 0 <= floor <= initial <= maximum and factor >= 1")

    def ceiling(self, attempt: int) -> float:
        """The largest delay attempt may wait."""
        # Capped exponent: factor**attempt overflows a float long before anyone retries that often.
        return min(self.maximum, self.initial * self.factor ** min(attempt, 64))

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one attempt."""
        delay = self.rng.uniform(self.floor, max(self.floor, self.ceiling(self.attempt)))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        """A connection succeeded: start again from the shortest delays."""
        self.attempt = 0
