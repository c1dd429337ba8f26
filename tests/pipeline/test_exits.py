"""exit_process: the CLI's end skips interpreter teardown, not what must happen at exit."""
import subprocess
import sys

SCRIPT = """
import atexit, logging, sys
from pipeline.exits import exit_process
handler = logging.FileHandler(sys.argv[1], delay=False)
logging.getLogger().addHandler(handler)
logging.getLogger().warning("logged last")
atexit.register(lambda: print("exit handler ran", flush=True))
print("buffered output", end="")
sys.stderr.write("buffered error")
exit_process(3)
"""


def test_exit_process_keeps_status_output_logs_and_exit_handlers(tmp_path):
    log = tmp_path / "run.log"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(log)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert done.stdout == "buffered outputexit handler ran\n"
    assert done.stderr.endswith("buffered error")
    assert log.read_text() == "logged last\n"


def test_a_profiled_run_exits_normally_so_the_profile_is_written(tmp_path):
    profile = tmp_path / "run.prof"
    script = tmp_path / "script.py"
    script.write_text("from pipeline.exits import exit_process\nexit_process(0)\n")
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(profile), str(script)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert profile.stat().st_size > 0


def test_an_unexpected_error_with_a_message_of_many_lines_is_still_one_line(capsys):
    from pipeline.exits import FAILED, report_user_errors  # noqa: PLC0415

    def work() -> int:
        raise RuntimeError("first line of it\nsecond line\nthird line")

    assert report_user_errors(debug=False, work=work) == FAILED
    assert capsys.readouterr().err.splitlines() == [
        "clipflow: failed: unexpected RuntimeError: first line of it; --debug shows the traceback"]
