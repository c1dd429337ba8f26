"""Several ``python -m pipeline.run`` commands in one process, each run as the CLI runs it (its ``main``, whose
return value the CLI exits with), with what each printed: a batch of bad-input cases pays the imports of
TensorFlow, TFX and Beam once instead of once a case.

Usage: python -m tests.e2e.cli_batch COMMANDS_JSON RESULTS_JSON
COMMANDS_JSON holds a list of argument lists; RESULTS_JSON gets one {returncode, stdout, stderr} per command.
"""
import contextlib
import io
import json
import sys

from pipeline.exits import exit_process
from pipeline.run import main as run_command


def main() -> None:
    commands_file, results_file = sys.argv[1:3]
    with open(commands_file) as f:
        commands = json.load(f)
    results = []
    for argv in commands:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run_command(argv)
        results.append({"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
    with open(results_file, "w") as f:
        json.dump(results, f)
    exit_process(0)


if __name__ == "__main__":
    main()
