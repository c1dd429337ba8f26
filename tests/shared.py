"""Session resources that every pytest-xdist worker shares: made by the first worker to ask, read by the others."""
import fcntl
import json
import os
from typing import Callable


def made_once(tmp_path_factory, name: str, make: Callable[[str], object]):
    """A session resource made once for the whole run, whatever the number of xdist workers: the first worker to
    ask makes it (``make(folder)``, returning something JSON can hold) under a file lock, the others wait and
    read what it returned. Without workers, it is made here like any session fixture."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return make(str(tmp_path_factory.mktemp(name)))
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's own
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until the file closes
        made = shared / f"{name}.json"
        if made.is_file():
            return json.loads(made.read_text())
        folder = shared / name
        folder.mkdir()
        value = make(str(folder))
        made.write_text(json.dumps(value))
        return value
