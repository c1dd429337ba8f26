"""A stop signal inside ``stops_deferred`` waits for the block to end, then takes effect with its own handler."""
import os
import signal

import pytest

from components.common.signals import stops_deferred


class Stop(Exception):
    pass


@pytest.fixture
def raising_handlers():
    """SIGINT and SIGTERM raise Stop while the test runs; the handler is returned."""
    def stop(signum, _frame):
        raise Stop(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    yield stop
    for s, handler in previous.items():
        signal.signal(s, handler)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_inside_the_block_waits_for_its_end(raising_handlers, signum):
    done = []
    with pytest.raises(Stop) as raised:
        with stops_deferred():
            os.kill(os.getpid(), signum)
            done.append("after the signal")
        done.append("after the block")  # never: the stop takes effect as the block ends
    assert raised.value.args == (signum,)
    assert done == ["after the signal"]
    assert signal.getsignal(signum) is raising_handlers  # the handler is back


@pytest.mark.usefixtures("raising_handlers")
def test_nested_blocks_hold_the_stop_until_the_outer_one_ends():
    done = []
    with pytest.raises(Stop):
        with stops_deferred():
            with stops_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
            done.append("between the blocks")
    assert done == ["between the blocks"]


def test_without_a_stop_the_block_changes_nothing(raising_handlers):
    with stops_deferred():
        pass
    assert signal.getsignal(signal.SIGINT) is raising_handlers and signal.getsignal(signal.SIGTERM) is raising_handlers
