import itertools
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ferrytest import EXCERPT_CHARS, Ferry, sanitizer_excerpt  # noqa: E402

# ---------------------------------------------------------------- sanitizer reports and exit status
#
# `make sanitize` runs these tests against a ferry built with ASan, LeakSanitizer and UBSan. A report inside
# `ferry serve` lands in its log (stdout and stderr go there) and may not break the test by itself: the server
# can die after the test's last check, and LeakSanitizer only reports when the process exits. So every server's
# log is read after the test (and after the server is stopped), and a server that did not exit 0 on SIGTERM
# fails the test too. The same checks run, and cost nothing, with the normal build.

# How far each server's log has been read, and whose exit status has been judged.
_log_offset = {}      # id(srv) -> bytes of srv.log_path already scanned
_judged_procs = set()  # id(Popen) whose exit status was checked already


def sanitizer_report(srv):
    """The first sanitizer report (or libstdc++ assertion) the server's log gained since the last call, with
    what follows it; "" when there is none. While the server runs only whole lines are taken."""
    start = _log_offset.get(id(srv), 0)
    try:
        if srv.log_path.stat().st_size <= start:
            return ""
        with open(srv.log_path, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return ""
    if srv.running():
        data = data[:data.rfind(b"\n") + 1]
    if not data:
        return ""
    _log_offset[id(srv)] = start + len(data)
    excerpt = sanitizer_excerpt(data.decode("utf-8", errors="replace"))
    return f"sanitizer report in {srv.log_path}:\n{excerpt}" if excerpt else ""


def exit_problem(srv, rc, stopped_here):
    """Why the server's exit status is wrong, or "". `stopped_here`: the harness sent the SIGTERM (the server was
    still running after the test), so anything but 0 is a failure. Otherwise the test stopped or killed it
    itself: SIGKILL (kill9, or stop() after its timeout) is the test's business, any other non-zero status is a
    crash (a sanitizer exits 86)."""
    if srv.proc is None or id(srv.proc) in _judged_procs:
        return ""
    _judged_procs.add(id(srv.proc))
    if stopped_here:
        if rc == 0:
            return ""
        why = "did not exit within the stop() timeout after SIGTERM (SIGKILLed)" if rc is None else f"exited {rc}"
        return f"ferry serve on port {srv.port}: {why} when stopped after the test\n--- log (tail) ---\n" \
               f"{srv.log[-EXCERPT_CHARS:]}"
    if rc in (0, -signal.SIGKILL):
        return ""
    return f"ferry serve on port {srv.port} had exited with status {rc} before the end of the test\n" \
           f"--- log (tail) ---\n{srv.log[-EXCERPT_CHARS:]}"


def check_servers(servers, stop):
    """Stops (when `stop`) and checks each server; returns the problems found."""
    problems = []
    for srv in servers:
        if srv.proc is None:
            continue
        stopped_here = stop and srv.running()
        if stopped_here:
            try:
                rc = srv.stop()
            except Exception as e:  # never leave a server behind
                srv.kill9()
                problems.append(f"ferry serve on port {srv.port}: stop() failed: {e!r}")
                rc = srv.proc.returncode
        else:
            rc = srv.proc.poll()
        if rc is not None or stopped_here:
            problems.append(exit_problem(srv, rc, stopped_here))
        problems.append(sanitizer_report(srv))
    return [p for p in problems if p]


@pytest.fixture(autouse=True)
def _server_checks():
    """After each test: sanitizer reports in any server's log, and the exit status of the servers this test
    started itself (not through `ferry`) and stopped. A module fixture's server is read after every test while
    it runs; its exit status is judged at the end of the session."""
    before = len(Ferry.started)
    yield
    own = Ferry.started[before:]
    problems = check_servers(own, stop=False)
    problems += [r for r in map(sanitizer_report, Ferry.started[:before]) if r]
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _final_server_checks():
    """At the end of the session, after module fixtures stopped their servers: stop any server still running,
    then the last sanitizer reports (LeakSanitizer's come at exit) and exit statuses."""
    yield
    problems = check_servers(Ferry.started, stop=True)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


# ---------------------------------------------------------------- fixtures

@pytest.fixture
def ferry(tmp_path):
    """Factory: ferry(limits={...}, queue={...}, aliases={...}, users=(...), start=True) -> Ferry.

    Users default to alice@example.test and bob@example.test, added with `ferry user add`
    before the server starts. Every server started here is stopped (SIGTERM, then SIGKILL) at teardown;
    the test fails if one does not exit 0 then, had crashed before, or logged a sanitizer report.
    """
    servers = []
    counter = itertools.count()

    def make(start=True, **kw):
        srv = Ferry(tmp_path / f"ferry{next(counter)}", **kw)
        servers.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    problems = check_servers(servers, stop=True)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def server(ferry):
    """A default server with alice and bob."""
    return ferry()
