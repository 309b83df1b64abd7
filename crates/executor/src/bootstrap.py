import sys, os
sys.path.append(os.getcwd())
import pytest


class WardenResults:
    """One JSON line per report pytest makes, written as it is made (read by records.rs).

    A test's passing setup and teardown write nothing (the setup's time goes into the next
    record of the test), so a test costs one short line; every other report is written."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        import json
        self.dumps = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
        self.setup = {}

    def write(self, record):
        data = (self.dumps(record) + "\n").encode("utf-8", "replace")
        while data:
            data = data[os.write(self.fd, data):]

    def pytest_runtest_logreport(self, report):
        nodeid, when, outcome = report.nodeid, report.when, report.outcome
        duration = getattr(report, "duration", 0.0)
        if outcome == "passed" and when != "call":
            if when == "setup":
                self.setup[nodeid] = duration
            return
        record = {"id": nodeid, "when": when, "outcome": outcome, "duration": duration + self.setup.pop(nodeid, 0.0)}
        if outcome != "passed":
            longrepr = report.longrepr
            if outcome == "skipped" and type(longrepr) is tuple and len(longrepr) == 3:
                message = str(longrepr[2])
            else:
                crash = getattr(longrepr, "reprcrash", None)
                message = str(crash.message if crash is not None else longrepr)
            record["message"] = message[:4000]
        if hasattr(report, "wasxfail"):
            record["xfail"] = str(report.wasxfail)[:4000]
        if getattr(report, "context", None) is not None:
            record["subtest"] = True
        self.write(record)

    def pytest_collectreport(self, report):
        if report.outcome == "passed":
            return
        record = {"id": report.nodeid, "when": "collect", "outcome": report.outcome}
        if report.outcome == "failed":
            record["traceback"] = str(report.longrepr)[-16384:]
        self.write(record)

    def pytest_sessionfinish(self, session, exitstatus):
        self.write({"end": int(exitstatus)})


sys.exit(pytest.main(plugins=[WardenResults(sys.argv.pop(1))]))
