import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ferrytest import Ferry  # noqa: E402


@pytest.fixture
def ferry(tmp_path):
    """Factory: ferry(limits={...}, queue={...}, aliases={...}, users=(...), start=True) -> Ferry.

    Users default to alice@example.test and bob@example.test, added with `ferry user add`
    before the server starts. Every server started here is stopped (SIGTERM, then SIGKILL) at teardown.
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
    for srv in servers:
        try:
            srv.stop()
        except Exception:
            srv.kill9()


@pytest.fixture
def server(ferry):
    """A default server with alice and bob."""
    return ferry()
