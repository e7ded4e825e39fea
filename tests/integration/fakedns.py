"""A DNS server for tests that speaks the real protocol (dnslib's server, UDP) on a
loopback address, port 53, and answers each name as the test says: with addresses, with
NXDOMAIN, with SERVFAIL (glibc's EAI_AGAIN) or not at all (a resolver that is slow). A
process started under `isolated_resolver(...)` asks it through the machine's own resolver
(glibc reading /etc/resolv.conf, which is bind-mounted in a mount namespace of the
process's own: the rest of the machine keeps its resolver)."""

from __future__ import annotations

import dataclasses
import enum
import errno
import ipaddress
import os
import pathlib
import random
import shutil
import threading
from typing import Any

from dnslib import dns
from dnslib import server as dns_server

PORT = 53
"""glibc asks port 53 only; binding it on a loopback address needs root, as tests run."""
SILENCE_SECONDS = 60.0
"""Longest a silent answer keeps its handler thread; the server's stop releases it first."""


class Rcode(enum.Enum):
    """An answer without addresses."""

    NXDOMAIN = "NXDOMAIN"
    """The name does not exist: a verdict (glibc: EAI_NONAME)."""
    SERVFAIL = "SERVFAIL"
    """The server failed for now (glibc: EAI_AGAIN)."""
    SILENT = "SILENT"
    """No answer at all: the client times out."""


Answer = tuple[str, ...] | Rcode
"""The addresses a name resolves to, or how it fails."""


@dataclasses.dataclass(kw_only=True)
class FakeDns:
    """The running server: set `names[name]` to choose what a name answers; unknown names
    are NXDOMAIN. `asked` lists (name, type) as the questions came."""

    address: str
    names: dict[str, Answer] = dataclasses.field(default_factory=dict)
    asked: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    _released: threading.Event = dataclasses.field(default_factory=threading.Event)
    _server: dns_server.DNSServer | None = None

    def resolve(self, request: dns.DNSRecord, handler: Any) -> dns.DNSRecord:
        """dnslib's resolver interface: the reply to one question."""
        name = str(request.q.qname).rstrip(".").lower()
        qtype = dns.QTYPE[request.q.qtype]
        self.asked.append((name, qtype))
        answer = self.names.get(name, Rcode.NXDOMAIN)
        if answer is Rcode.SILENT:
            self._released.wait(SILENCE_SECONDS)
            # dnslib's handler logs a DNSError and sends nothing.
            raise dns.DNSError(f"{name}: no answer, on purpose")
        reply = request.reply()
        if isinstance(answer, Rcode):
            reply.header.rcode = getattr(dns.RCODE, answer.value)
            return reply
        for text in answer:
            address = ipaddress.ip_address(text)
            record, kind = (dns.A, "A") if address.version == 4 else (dns.AAAA, "AAAA")
            if kind == qtype:
                reply.add_answer(
                    dns.RR(name, getattr(dns.QTYPE, kind), rdata=record(address.exploded), ttl=0)
                )
        return reply  # no record of the asked type: NOERROR with no answer (NODATA)

    def start(self) -> None:
        quiet = dns_server.DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
        self._server = dns_server.DNSServer(self, address=self.address, port=PORT, logger=quiet)
        self._server.start_thread()

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.stop()
            self._server.server.server_close()
            self._server = None

    def resolv_conf(self, path: pathlib.Path, *, timeout_seconds: int) -> pathlib.Path:
        """A resolv.conf naming this server alone, asked once per question, `timeout_seconds`
        before glibc gives up on it."""
        path.write_text(
            f"nameserver {self.address}\noptions timeout:{timeout_seconds} attempts:1\n"
        )
        return path


def start() -> FakeDns:
    """A FakeDns on a free loopback address of 127.53.0.0/16 (other tests' servers may
    hold some: the port is fixed, so the address varies)."""
    picks = random.Random()
    for _ in range(50):
        address = f"127.53.{picks.randrange(256)}.{picks.randrange(1, 255)}"
        server = FakeDns(address=address)
        try:
            server.start()
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            continue
        return server
    raise RuntimeError("no free loopback address for the test DNS server")


def isolated_resolver(resolv_conf: pathlib.Path) -> tuple[str, ...]:
    """A command prefix that runs a command with `resolv_conf` as its /etc/resolv.conf,
    in a mount namespace of its own."""
    unshare = shutil.which("unshare")
    assert unshare is not None, "unshare (util-linux) is needed"
    assert os.geteuid() == 0, "a mount namespace and port 53 need root, as the tests run"
    script = 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"'
    return (unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh",
            str(resolv_conf))  # fmt: skip
