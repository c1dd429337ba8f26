"""Stop signals (Ctrl-C's SIGINT; SIGTERM from kill, docker stop, Kubernetes, Airflow) held back
while a few writes that belong together run."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator, List

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stops_deferred() -> Iterator[None]:
    """A stop signal that arrives inside the block takes effect, with its own handler, when the block
    ends: a stop never leaves what the block writes half-written. (A SIGKILL still can; readers of
    such writes must pass over a damaged one.) Python delivers signals to the main thread only, so
    elsewhere there is nothing to hold back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: List[int] = []
    previous = {signum: signal.signal(signum, lambda signum, _frame: received.append(signum))
                for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)  # None: not set from Python
        if received:
            signal.raise_signal(received[0])
