"""Reconnect delays as a pure generator; the I/O loop consumes it.

Exponential growth with "full jitter" (each delay drawn uniformly below the exponential
envelope, so that clients dropped together do not reconnect together), capped. A caller resets
the policy after a successful connection by starting a new generator.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff_delays(
    initial: float = 1.0,
    maximum: float = 30.0,
    factor: float = 2.0,
    jitter: float = 0.5,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield reconnect delays in seconds, forever.

    Args:
        initial: the first envelope (e.g. the server's SSE ``retry`` hint).
        maximum: cap on every delay.
        factor: envelope growth per attempt.
        jitter: fraction of each envelope that is randomised (0 = deterministic, 1 = full
            jitter); a delay lies in ``[envelope * (1 - jitter), envelope]``.
        rng: random source, injectable for reproducible tests.
    """
    if initial < 0 or maximum < 0 or factor < 1 or not 0 <= jitter <= 1:
        raise ValueError("backoff parameters out of range")
    rng = rng or random.Random()
    envelope = min(initial, maximum)
    while True:
        yield envelope * (1 - jitter * rng.random())
        envelope = min(envelope * factor, maximum) if envelope else min(1.0, maximum)
