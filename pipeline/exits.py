"""How a command ends: bad input as one line and exit status 2, any other failure as one
line naming the component and the log (exit status 3), Ctrl-C or SIGTERM with how to resume,
and an exit without the interpreter's teardown."""
from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
from typing import Any, Callable, NoReturn, Optional

from components.common.errors import ClipflowError, first_line
from pipeline.config import EMBEDDED_RUNNERS, PipelineConfig
from pipeline.paths import RunPaths

FAILED = 3  # exit status when a run failed for another reason than bad input (2)
RESUME_HINT = (
    "Run the same command again to resume: finished components are reused from the cache "
    "and the Trainer continues from its last checkpoint."
)
INTERRUPTED, TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM  # the exit statuses shells give these signals


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is as Ctrl-C raises KeyboardInterrupt: a KeyboardInterrupt, so
    the code it passes through treats it as one (nothing catches it as an error, nothing is published)."""


def _raise_terminated(_signum, _frame) -> NoReturn:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated()


class RunFailed(Exception):
    """A component or the runner failed, not because of bad input; the message is the user's one line."""


def failed_component(config: PipelineConfig) -> Optional[str]:
    """The component whose execution the latest run recorded as FAILED, if ML Metadata says."""
    from pipeline import metadata  # noqa: PLC0415

    try:
        store = metadata.open_store(RunPaths.of(config.pipeline).metadata_db)
        run_id = metadata.latest_run_id(store)
        failed = [e.node for e in metadata.run_executions(store, run_id) if e.state == "FAILED"] if run_id else []
    except Exception:  # noqa: BLE001  (no store, or not readable: say less, not crash)
        return None
    return failed[-1] if failed else None


def attributed(config: PipelineConfig, log_file: Optional[str], work: Callable[[], Any]) -> Any:
    """Runs ``work`` (a pipeline run); an exception that is not bad input becomes a RunFailed naming
    the component that failed and the log that holds the traceback (written there now)."""
    try:
        return work()
    except ClipflowError:
        raise
    except Exception as err:
        logging.getLogger(__name__).error("the run failed", exc_info=err)
        where = failed_component(config) if config.pipeline.runner in EMBEDDED_RUNNERS else None
        what = where or f"the {config.pipeline.runner} runner"
        raise RunFailed(
            f"{what} failed: {type(err).__name__}: {first_line(err)[:300]}; "
            f"the traceback is in {log_file or 'the log'} (--debug shows it here)"
        ) from err


def report_user_errors(debug: bool, work: Callable[[], int]) -> int:
    """Runs a command's ``work``: a user error ends as one stderr line and exit 2, any other
    failure as one line and exit 3 (the traceback instead with ``debug``; in the log otherwise),
    Ctrl-C (exit 130) and SIGTERM (exit 143) as one line with how to resume."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return work()
    except ClipflowError as err:
        if debug:
            raise
        print(f"clipflow: error: {first_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated)
        print(f"clipflow: {'stopped by SIGTERM' if terminated else 'interrupted'}. {RESUME_HINT}", file=sys.stderr)
        return TERMINATED if terminated else INTERRUPTED
    except RunFailed as err:
        if debug:
            raise err.__cause__ from None
        print(f"clipflow: failed: {err}", file=sys.stderr)
        return FAILED
    except Exception as err:  # a bug outside any run: still one line
        if debug:
            raise
        logging.getLogger(__name__).error("unexpected error", exc_info=err)
        print(f"clipflow: failed: unexpected {type(err).__name__}: {first_line(err)[:300]}; --debug shows the traceback",
              file=sys.stderr)
        return FAILED


def exit_process(code: int) -> NoReturn:
    """Ends a command without the interpreter's teardown.

    Freeing the TensorFlow, Beam and TFX modules took seconds after every
    run (docs/benchmarks.md), with nothing left to write: the run's files
    are closed and ML Metadata's transactions committed. Exit handlers (logging's final flush among them)
    still run, as they would at a normal exit. Under a profiler, debugger or
    coverage tool the exit is the normal one: they write their results then."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    atexit._run_exitfuncs()  # noqa: SLF001  (what the interpreter itself calls at exit)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
