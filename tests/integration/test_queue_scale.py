"""The queue can be far larger than what the scheduler holds in memory ([queue] active_limit): messages beyond
the limit wait in the spool, are listed as such, and are taken in and delivered as the scheduled ones leave."""

import os

import pytest

from dnstest import DnsServer
from ferrytest import free_port, header_value
from smtppeer import SmtpPeer
from test_outbound import ZONE, sender_server, submit, wait_peer

LIMIT = 6
MESSAGES = 20


@pytest.fixture
def dns():
    with DnsServer(ZONE) as server:
        yield server


def spool_messages(srv):
    queue = srv.data_dir / "spool" / "queue"
    return sorted(n for n in os.listdir(queue) if "." not in n)


def test_queue_beyond_the_active_limit_waits_on_disk_and_is_delivered_in_full(dns, ferry):
    port = free_port()   # the destination is down while the queue fills
    srv = sender_server(ferry, dns, port, queue={"active_limit": LIMIT, "min_retry": "1h", "max_retry": "2h"})
    qids = [submit(srv, f"r{i}@example.org", subject=f"scale {i}") for i in range(MESSAGES)]

    # Every message is safe in the spool, but only LIMIT are scheduled (tried, and deferred).
    assert spool_messages(srv) == sorted(qids)
    srv.wait_queue(lambda q: len(q) == LIMIT and all(r["attempts"] >= 1 for m in q for r in m["recipients"]),
                   what=f"{LIMIT} deferred messages")
    listed = srv.queue_list()
    assert len(listed) == LIMIT
    text = srv.queue_cli("list").stdout.decode()
    assert "more in the spool" in text, text

    # The destination comes up: the scheduled ones go at the flush, the rest are taken in from the spool.
    with SmtpPeer(port=port) as peer:
        srv.queue_flush()
        msgs = wait_peer(peer, srv, MESSAGES, timeout=90)
        subjects = sorted(header_value(m.data, "Subject") for m in msgs)
        assert subjects == sorted(f"scale {i}" for i in range(MESSAGES))
        assert len(peer.messages) == MESSAGES, "a message was sent twice"
        srv.wait_queue(lambda q: q == [], what="an empty queue")
    assert spool_messages(srv) == []
    assert "took in" in srv.log
