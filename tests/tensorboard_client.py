"""A real TensorBoard server's data endpoints, as the browser app calls them."""
from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Dict, Iterable, List

import pytest

from pipeline.tools.browser import free_port
from pipeline.tools.tensorboard import start_server

# Every status a session can have: runs in progress (unknown) and diverged ones (failure) are rows too.
ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


class Board:
    def __init__(self, url: str):
        self.url = url

    @classmethod
    def start(cls, spec: str, data_location: str = "") -> "Board":
        """A TensorBoard server in this process, on a free port."""
        return cls(start_server(spec, "127.0.0.1", free_port(), data_location))

    def get(self, path: str, **query):
        with urllib.request.urlopen(self.url + path + ("?" + urllib.parse.urlencode(query) if query else ""),
                                    timeout=30) as response:
            return json.load(response)

    def post(self, path: str, body: dict):
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def wait_for(self, runs: Iterable[str], tag: str = "final/eval_accuracy", timeout: float = 60) -> None:
        """Until every run in ``runs`` has scalar ``tag`` (TensorBoard loads event files in the background)."""
        wanted = set(runs)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tags = self.get("data/plugin/scalars/tags")
            if all(tag in tags.get(run, {}) for run in wanted):
                return
            time.sleep(0.5)
        pytest.fail(f"TensorBoard never showed {tag} for {sorted(wanted)}: {sorted(self.get('data/runs'))}")

    def layout(self) -> dict:
        return self.get("data/plugin/custom_scalars/layout")

    def matching_tags(self, run: str, regex: str) -> Dict[str, List]:
        """tag -> [[wall_time, step, value], ...] for the tags of ``run`` a chart's regex matches."""
        body = self.get("data/plugin/custom_scalars/scalars", run=run, tag=regex)
        assert body["regex_valid"], regex
        return body["tag_to_events"]

    def experiment(self) -> dict:
        return self.post("data/plugin/hparams/experiment", {"experimentName": ""})

    def sessions(self) -> Dict[str, dict]:
        """Session (run) name -> {"hparams": {...}, "metrics": {tag: value}, "status": ..., "trial": its group's
        name, the Trial ID column}."""
        groups = self.post("data/plugin/hparams/session_groups", {
            "experimentName": "", "allowedStatuses": ALL_STATUSES, "startIndex": 0, "sliceSize": 1000,
        })
        sessions = {}
        for group in groups.get("sessionGroups", []):
            for session in group["sessions"]:
                sessions[session["name"]] = {
                    "hparams": group["hparams"],  # google.protobuf.Value: plain JSON values
                    "metrics": {m["name"]["tag"]: m["value"] for m in session.get("metricValues", [])},
                    "status": session.get("status", "STATUS_UNKNOWN"),
                    "trial": group["name"],
                }
        return sessions


def charts(layout: dict, category: str) -> List[dict]:
    return next(c["chart"] for c in layout["category"] if c["title"] == category)


def chart_regexes(chart: dict) -> List[str]:
    """A chart's tag regexes: a multiline chart's, or each margin series' value, lower and upper."""
    if "margin" in chart:
        return [series[part] for series in chart["margin"]["series"] for part in ("value", "lower", "upper")]
    return chart["multiline"]["tag"]
