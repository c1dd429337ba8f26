"""first_line: what every one-line report says of an exception it did not raise itself."""
import pytest

from components.common.errors import first_line


@pytest.mark.parametrize("err, expected", [
    (ValueError("bad shape\n  in layer dense\n"), "bad shape"),
    (RuntimeError("\n\n  lost the peer  \nmore"), "lost the peer"),
    (OSError("disk full [while running 'Train/ParDo(Fit)']"), "disk full"),
    (KeyError(), "KeyError"),
    (TimeoutError("   "), "TimeoutError"),
])
def test_the_first_line_of_the_message_without_beams_step_names_or_the_type(err, expected):
    assert first_line(err) == expected
