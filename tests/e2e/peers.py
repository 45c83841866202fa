"""Scripted SMTP peers on loopback, the next hops of Starling's outbound delivery in tests.

- `Sink`: a real SMTP server (Python's aiosmtpd, Debian's python3-aiosmtpd) in a thread of the
  test process. It records every envelope and message, the connections and the commands, and
  can offer STARTTLS (a certificate from cert_factory), AUTH PLAIN/LOGIN with a fixed user and
  password, SIZE, SMTPUTF8 (or not). A `Script` gives scripted replies to MAIL/RCPT/DATA/EHLO:
  "451 to the first DATA, then 250", "550 to RCPT bad@...".
- `RawPeer`: a raw-socket SMTP server (threads) for what aiosmtpd cannot do: never send the
  greeting, close the connection in the middle of DATA, greet with 421. Connections without a
  fault are served normally and recorded like the Sink's.
- `PostfixInstance`: a private Postfix (own config, queue and data directories, own port on
  127.0.0.1, TLS with a given certificate, log in a file) delivering to one Maildir.
- `python3 peers.py sink --port P --record FILE`: a Sink in its own process that appends one
  JSON line per accepted message to FILE (for the relay crash test).

Every peer counts Message-IDs (`message_ids()`), so at-least-once and exactly-once checks are
one Counter away. Standard library plus aiosmtpd.
"""

import argparse
import asyncio
import collections
import email
import email.policy
import json
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

HOST = "127.0.0.1"
warnings.filterwarnings("ignore", message=r"Session\.login_data is deprecated")
MESSAGE_ID_RE = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.I | re.M)


def free_port(host=HOST):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05):
    """Polls `predicate` until it returns something true or `timeout` s pass; returns the
    last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# --- what a peer records ---------------------------------------------------------------------

class Received:
    """One message a peer accepted (250 to the end of data)."""

    def __init__(self, connection, mail_from, mail_options, rcpt_tos, data, helo, tls=None,
                 auth=None, peer=None):
        self.connection = connection      # 1-based connection number at this peer
        self.mail_from = mail_from        # "" for the null reverse path
        self.mail_options = mail_options  # ["SIZE=123", "BODY=8BITMIME", ...]
        self.rcpt_tos = rcpt_tos          # accepted recipients only
        self.data = data                  # the message as received, dots unstuffed, CRLF lines
        self.helo = helo                  # the EHLO/HELO name the client gave
        self.tls = tls                    # None, or {"version":, "cipher":, "peercert":}
        self.auth = auth                  # None, or (mechanism, login)
        self.peer = peer
        self.time = time.monotonic()

    def message_id(self):
        m = MESSAGE_ID_RE.search(self.header_bytes())
        return m.group(1).decode(errors="replace") if m else None

    def header_bytes(self):
        return self.data.split(b"\r\n\r\n", 1)[0] + b"\r\n"

    def parsed(self):
        return email.message_from_bytes(self.data, policy=email.policy.compat32)

    def headers(self, name):
        """Values of header `name`, unfolded, in order."""
        return [re.sub(r"\r?\n[ \t]+", " ", v) for v in (self.parsed().get_all(name) or [])]

    def body(self):
        parts = self.data.split(b"\r\n\r\n", 1)
        return parts[1] if len(parts) > 1 else b""

    def __repr__(self):
        return (f"Received(conn={self.connection}, from={self.mail_from!r}, to={self.rcpt_tos}, "
                f"id={self.message_id()}, {len(self.data)} bytes, tls={bool(self.tls)})")


class Rule:
    """A scripted reply: to `command` (MAIL, RCPT, DATA, EHLO, or DATA_END = the end of the
    message data), when the argument matches the regex `match` (None: any), say `reply`;
    `times` = how many times (None: every time). `reply` may be DISCONNECT (close at once)."""

    def __init__(self, command, reply, match=None, times=None):
        self.command = command.upper()
        self.reply = reply
        self.match = re.compile(match, re.I) if match else None
        self.times = times
        self.used = 0

    def applies(self, command, arg):
        if self.command != command or (self.times is not None and self.used >= self.times):
            return False
        return self.match is None or bool(self.match.search(arg or ""))


DISCONNECT = "<disconnect>"
SILENCE = "<silence>"  # RawPeer only: never reply, read until the client gives up


class Script:
    """Rules checked in order; the first that applies gives the reply. Thread-safe, and may be
    changed while the peer runs (`clear()` = behave from now on)."""

    def __init__(self, *rules):
        self._lock = threading.Lock()
        self._rules = list(rules)

    def add(self, *rules):
        with self._lock:
            self._rules.extend(rules)
        return self

    def clear(self):
        with self._lock:
            self._rules = []

    def reply_for(self, command, arg=""):
        with self._lock:
            for rule in self._rules:
                if rule.applies(command, arg):
                    rule.used += 1
                    return rule.reply
        return None


class PeerRecord:
    """What every peer keeps: connections, commands, accepted messages."""

    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0
        self.commands = []      # (connection, "MAIL FROM:<...>") in arrival order
        self.messages = []      # [Received]
        self.replies = []       # (connection, command verb, reply) for scripted replies given

    def reset(self):
        with self.lock:
            self.connections = 0
            self.commands = []
            self.messages = []
            self.replies = []

    def new_connection(self):
        with self.lock:
            self.connections += 1
            return self.connections

    def command(self, conn, line):
        with self.lock:
            self.commands.append((conn, line))

    def accepted(self, msg):
        with self.lock:
            self.messages.append(msg)

    # --- queries ---------------------------------------------------------------------------

    def all(self):
        with self.lock:
            return list(self.messages)

    def verbs(self, verb):
        with self.lock:
            return [(c, line) for c, line in self.commands if line.upper().startswith(verb)]

    def message_ids(self):
        return collections.Counter(m.message_id() for m in self.all())

    def find(self, token):
        needle = token.encode() if isinstance(token, str) else token
        return [m for m in self.all() if needle in m.data]

    def wait_messages(self, count=1, timeout=15.0, token=None):
        """Accepted messages (containing `token`, if given); waits until there are `count`."""
        def enough():
            found = self.find(token) if token is not None else self.all()
            return found if len(found) >= count else None
        return wait_until(enough, timeout) or (self.find(token) if token is not None
                                               else self.all())

    def wait_connections(self, count=1, timeout=15.0):
        wait_until(lambda: self.connections >= count, timeout)
        return self.connections

    def messages_per_connection(self):
        return collections.Counter(m.connection for m in self.all())


def quiet_peer_warnings():
    """aiosmtpd warns about AUTH without TLS (wanted here) and a deprecated attribute it uses
    itself; unittest turns warnings back on for each run, so this is called per peer."""
    warnings.filterwarnings("ignore", message=r"Session\.login_data is deprecated")
    warnings.filterwarnings("ignore", message=r"Requiring AUTH while not requiring TLS")
    warnings.filterwarnings("ignore", category=ResourceWarning)
    logging.getLogger("mail.log").setLevel(logging.ERROR)  # the same, as log lines


def server_tls_context(cert, key, client_ca=None):
    """A server context for `cert`/`key` (PEM paths). client_ca: request (not require) a
    client certificate verified against this CA file."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    if client_ca:
        ctx.load_verify_locations(str(client_ca))
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


# --- aiosmtpd sink ---------------------------------------------------------------------------

class Sink(PeerRecord):
    """aiosmtpd on host:port (port None: a free one). Options:
    tls=(cert, key) paths or a cert_factory Leaf: offer STARTTLS with it;
    size_limit=N: advertise SIZE N and refuse bigger; smtputf8=False: do not offer SMTPUTF8;
    auth=(user, password): offer AUTH and require it for MAIL; auth_mechanisms=("PLAIN",) to
    offer only some; auth_require_tls=True: offer AUTH only after STARTTLS;
    script=Script(...): scripted replies; hostname: the name in the greeting and EHLO reply."""

    def __init__(self, host=HOST, port=None, tls=None, size_limit=None, smtputf8=True,
                 auth=None, auth_mechanisms=None, auth_require_tls=False, script=None,
                 hostname="sink.example.net", require_starttls=False, timeout=60,
                 data_delay=0.0):
        super().__init__()
        self.active = 0        # connections open now
        self.max_active = 0    # the most open at once
        quiet_peer_warnings()
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP, AuthResult
        self.host = host
        self.port = port or free_port(host)
        self.script = script or Script()
        self.auth = auth
        self.auth_log = []   # (mechanism, login, success)
        self.tls_sessions = 0
        self.hostname = hostname
        tls_context = None
        if tls is not None:
            cert, key = (tls.cert, tls.key) if hasattr(tls, "cert") else tls
            tls_context = server_tls_context(cert, key)
        record = self

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):
                conn = getattr(server, "conn_no", 0)
                record.command(conn, f"EHLO {hostname}")
                session.host_name = hostname
                scripted = record.script.reply_for("EHLO", hostname)
                if scripted is not None:
                    return [scripted]
                return responses

            async def handle_MAIL(self, server, session, envelope, address, mail_options):
                conn = getattr(server, "conn_no", 0)

                shown = "" if address == "<>" else address
                record.command(conn, f"MAIL FROM:<{shown}> {' '.join(mail_options)}".strip())
                scripted = record.script.reply_for("MAIL", address)
                if scripted is not None:
                    return record._scripted(server, conn, "MAIL", scripted)
                envelope.mail_from = address
                envelope.mail_options.extend(mail_options)
                return "250 2.1.0 OK"

            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                conn = getattr(server, "conn_no", 0)
                record.command(conn, f"RCPT TO:<{address}>")
                scripted = record.script.reply_for("RCPT", address)
                if scripted is not None:
                    return record._scripted(server, conn, "RCPT", scripted)
                envelope.rcpt_tos.append(address)
                return "250 2.1.5 OK"

            async def handle_RSET(self, server, session, envelope):
                record.command(getattr(server, "conn_no", 0), "RSET")
                return "250 2.0.0 OK"

            async def handle_QUIT(self, server, session, envelope):
                record.command(getattr(server, "conn_no", 0), "QUIT")
                return "221 2.0.0 Bye"

            async def handle_DATA(self, server, session, envelope):
                conn = getattr(server, "conn_no", 0)
                record.command(conn, "DATA")
                if data_delay:
                    await asyncio.sleep(data_delay)
                scripted = record.script.reply_for("DATA_END", envelope.mail_from or "")
                if scripted is not None:
                    return record._scripted(server, conn, "DATA_END", scripted)
                tls = None
                if session.ssl:
                    obj = session.ssl.get("ssl_object")
                    tls = {"version": obj.version() if obj else None,
                           "cipher": session.ssl.get("cipher"),
                           "peercert": session.ssl.get("peercert")}
                auth = None
                if session.authenticated:
                    auth = getattr(session, "auth_mechanism_used", None)
                mail_from = envelope.mail_from or ""
                if mail_from == "<>":  # aiosmtpd's spelling of the null reverse path
                    mail_from = ""
                record.accepted(Received(conn, mail_from,
                                         list(envelope.mail_options), list(envelope.rcpt_tos),
                                         envelope.original_content or envelope.content,
                                         session.host_name, tls, auth, session.peer))
                return "250 2.0.0 OK accepted"

        def authenticator(server, session, envelope, mechanism, auth_data):
            login = auth_data.login.decode(errors="replace") if isinstance(
                auth_data.login, bytes) else str(auth_data.login)
            password = auth_data.password.decode(errors="replace") if isinstance(
                auth_data.password, bytes) else str(auth_data.password)
            ok = record.auth is not None and (login, password) == tuple(record.auth)
            with record.lock:
                record.auth_log.append((mechanism, login, ok))
            if ok:
                session.auth_mechanism_used = (mechanism, login)
            return AuthResult(success=ok, handled=False)

        class CountingSMTP(SMTP):
            def connection_made(self, transport):
                if self.transport is None:      # a new connection, not the switch to TLS
                    self.conn_no = record.new_connection()
                    with record.lock:
                        record.active += 1
                        record.max_active = max(record.max_active, record.active)
                else:
                    with record.lock:
                        record.tls_sessions += 1
                super().connection_made(transport)

            def connection_lost(self, error):
                if not getattr(self, "_counted_lost", False):
                    self._counted_lost = True
                    with record.lock:
                        record.active -= 1
                super().connection_lost(error)

            async def smtp_STARTTLS(self, arg):
                record.command(getattr(self, "conn_no", 0), "STARTTLS")
                return await super().smtp_STARTTLS(arg)

            async def smtp_AUTH(self, arg):
                record.command(getattr(self, "conn_no", 0),
                               f"AUTH {arg.split()[0] if arg else ''}".strip())
                return await super().smtp_AUTH(arg)

            async def smtp_DATA(self, arg):
                scripted = record.script.reply_for("DATA", "")
                if scripted is not None:
                    record.command(getattr(self, "conn_no", 0), "DATA")
                    if scripted == DISCONNECT:
                        record._scripted(self, self.conn_no, "DATA", scripted)
                        return
                    with record.lock:
                        record.replies.append((self.conn_no, "DATA", scripted))
                    await self.push(scripted)
                    return
                return await super().smtp_DATA(arg)

        kwargs = dict(server_hostname=hostname, enable_SMTPUTF8=smtputf8, timeout=timeout,
                      require_starttls=require_starttls)
        if size_limit is not None:
            kwargs["data_size_limit"] = size_limit
        if tls_context is not None:
            kwargs["tls_context"] = tls_context
        if auth is not None:
            kwargs.update(authenticator=authenticator, auth_required=True,
                          auth_require_tls=auth_require_tls)
            if auth_mechanisms:
                wanted = {m.upper() for m in auth_mechanisms}
                kwargs["auth_exclude_mechanism"] = [m for m in ("PLAIN", "LOGIN")
                                                    if m not in wanted]
        else:
            kwargs["auth_require_tls"] = True  # offers no AUTH at all without an authenticator

        class SinkController(Controller):
            def factory(self):
                return CountingSMTP(self.handler, **self.SMTP_kwargs)

        self._controller = SinkController(Handler(), hostname=host, port=self.port,
                                          ready_timeout=10, **kwargs)
        self._started = False

    def _scripted(self, server, conn, verb, reply):
        with self.lock:
            self.replies.append((conn, verb, reply))
        if reply == DISCONNECT:
            server.transport.close()
            return "421 4.4.2 closing"  # never seen by the client: the transport is closed
        return reply

    def start(self):
        self._controller.start()
        self._started = True
        # Controller.start() makes one connection of its own to check the server is up.
        wait_until(lambda: self.connections >= 1 and self.active <= 0, 2.0)
        self.reset()
        with self.lock:
            self.auth_log = []
            self.tls_sessions = 0
            self.active = 0
            self.max_active = 0
        return self

    def stop(self):
        if self._started:
            self._started = False
            try:
                self._controller.stop()
            except (AssertionError, RuntimeError):
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def smart_host(self):
        return f"[{self.host}]:{self.port}"


# --- raw-socket peer -------------------------------------------------------------------------

SILENT = "silent"                          # accept, never send the greeting, read and discard
DISCONNECT_IN_DATA = "disconnect_in_data"  # after 354, read part of the message, then close
GREETING_421 = "greeting_421"              # "421 ..." as the greeting, then close
CLOSE_AT_ONCE = "close_at_once"            # accept and close without a byte


class RawPeer(PeerRecord):
    """A small SMTP server on raw sockets. `faults`: a list consumed one per connection
    (None = behave); when it is empty, `default_fault` applies (None = behave). Extensions
    offered: PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8 (and SIZE n with size_limit).
    `script` gives scripted replies like the Sink's."""

    def __init__(self, host=HOST, port=None, faults=(), default_fault=None, script=None,
                 hostname="raw.example.net", size_limit=None, smtputf8=True):
        super().__init__()
        self.host = host
        self.port = port or free_port(host)
        self.faults = collections.deque(faults)
        self.default_fault = default_fault
        self.script = script or Script()
        self.hostname = hostname
        self.size_limit = size_limit
        self.smtputf8 = smtputf8
        self.fault_log = []   # (connection, fault) as applied
        self._sock = None
        self._stop = threading.Event()
        self._threads = []
        self._open = set()
        self._open_lock = threading.Lock()

    def set_faults(self, faults=(), default_fault=None):
        with self.lock:
            self.faults = collections.deque(faults)
            self.default_fault = default_fault

    def behave(self):
        self.set_faults((), None)
        self.script.clear()

    def start(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, self.port))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        with self._open_lock:
            for s in list(self._open):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        for t in self._threads:
            t.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def smart_host(self):
        return f"[{self.host}]:{self.port}"

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, addr = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                fault = self.faults.popleft() if self.faults else self.default_fault
            n = self.new_connection()
            with self.lock:
                self.fault_log.append((n, fault))
            with self._open_lock:
                self._open.add(conn)
            t = threading.Thread(target=self._serve, args=(conn, addr, n, fault), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn, addr, n, fault):
        try:
            conn.settimeout(120)
            if fault == CLOSE_AT_ONCE:
                return
            if fault == SILENT:
                while not self._stop.is_set():
                    try:
                        if not conn.recv(65536):
                            return
                    except socket.timeout:
                        continue
                return
            if fault == GREETING_421:
                conn.sendall(f"421 4.3.2 {self.hostname} not now\r\n".encode())
                return
            _RawSession(self, conn, addr, n, fault).run()
        except OSError:
            pass
        finally:
            with self._open_lock:
                self._open.discard(conn)
            try:
                conn.close()
            except OSError:
                pass


class _RawSession:
    def __init__(self, peer, conn, addr, n, fault):
        self.peer, self.conn, self.addr, self.n, self.fault = peer, conn, addr, n, fault
        self.buf = b""
        self.helo = None
        self.reset()

    def reset(self):
        self.mail_from = None
        self.mail_options = []
        self.rcpts = []

    def send(self, text):
        self.conn.sendall(text.encode() + b"\r\n")

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def scripted(self, verb, arg):
        reply = self.peer.script.reply_for(verb, arg)
        if reply is not None:
            with self.peer.lock:
                self.peer.replies.append((self.n, verb, reply))
            if reply == DISCONNECT:
                raise EOFError
            if reply == SILENCE:
                while self.conn.recv(65536):
                    pass
                raise EOFError
            self.send(reply)
        return reply

    def run(self):
        p = self.peer
        try:
            self.send(f"220 {p.hostname} ESMTP raw peer")
            while True:
                raw = self.line()
                text = raw.decode("utf-8", errors="replace")
                p.command(self.n, text)
                verb, _, arg = text.partition(" ")
                verb = verb.upper()
                if verb in ("EHLO", "HELO"):
                    if self.scripted("EHLO", arg) is not None:
                        continue
                    self.helo = arg
                    self.reset()
                    if verb == "HELO":
                        self.send(f"250 {p.hostname}")
                        continue
                    ext = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]
                    if p.smtputf8:
                        ext.append("SMTPUTF8")
                    if p.size_limit:
                        ext.append(f"SIZE {p.size_limit}")
                    lines = [p.hostname] + ext
                    self.conn.sendall(b"".join(
                        f"250{'-' if i < len(lines) - 1 else ' '}{l}\r\n".encode()
                        for i, l in enumerate(lines)))
                elif verb == "MAIL":
                    m = re.match(r"FROM:\s*<([^>]*)>\s*(.*)$", arg, re.I)
                    if not m:
                        self.send("501 5.5.4 syntax")
                        continue
                    if self.scripted("MAIL", m.group(1)) is not None:
                        continue
                    self.mail_from = m.group(1)
                    self.mail_options = m.group(2).split()
                    self.rcpts = []
                    self.send("250 2.1.0 OK")
                elif verb == "RCPT":
                    m = re.match(r"TO:\s*<([^>]*)>", arg, re.I)
                    if not m or self.mail_from is None:
                        self.send("503 5.5.1 need MAIL" if m else "501 5.5.4 syntax")
                        continue
                    if self.scripted("RCPT", m.group(1)) is not None:
                        continue
                    self.rcpts.append(m.group(1))
                    self.send("250 2.1.5 OK")
                elif verb == "DATA":
                    if not self.rcpts:
                        self.send("503 5.5.1 no valid recipients")
                        continue
                    if self.scripted("DATA", "") is not None:
                        continue
                    self.send("354 go ahead")
                    if self.fault == DISCONNECT_IN_DATA:
                        self.read_part_then_close()
                        return
                    data = self.read_data()
                    if self.scripted("DATA_END", self.mail_from) is not None:
                        self.reset()
                        continue
                    p.accepted(Received(self.n, self.mail_from, self.mail_options,
                                        list(self.rcpts), data, self.helo, peer=self.addr))
                    self.send("250 2.0.0 OK accepted")
                    self.reset()
                elif verb == "RSET":
                    self.reset()
                    self.send("250 2.0.0 OK")
                elif verb == "NOOP":
                    self.send("250 2.0.0 OK")
                elif verb == "QUIT":
                    self.send("221 2.0.0 bye")
                    return
                else:
                    self.send("502 5.5.2 not implemented")
        except (EOFError, OSError):
            return

    def read_data(self):
        lines = []
        while True:
            raw = self.line()
            if raw == b".":
                break
            lines.append(raw[1:] if raw.startswith(b".") else raw)
        return b"".join(l + b"\r\n" for l in lines)

    def read_part_then_close(self):
        """Reads until some message bytes have arrived (or 2 s pass), then drops the
        connection without a reply."""
        deadline = time.monotonic() + 2.0
        got = len(self.buf)
        self.conn.settimeout(0.2)
        while got < 64 and time.monotonic() < deadline:
            try:
                chunk = self.conn.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            got += len(chunk)
        try:
            self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass


# --- a private Postfix -----------------------------------------------------------------------

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"


def postfix_available():
    return (os.path.exists(POSTFIX) and os.geteuid() == 0
            and os.path.exists("/usr/lib/postfix/sbin/master"))


class PostfixInstance:
    """A private Postfix: `postfix -c DIR/etc start`, its own queue and data directories, smtpd
    on 127.0.0.1:port with STARTTLS (smtpd_tls_security_level=may) and `tls=(cert, key)`,
    accepting mail for `domains` and delivering it with virtual(8) to one Maildir,
    DIR/mail/<first domain>/user/. Logs to DIR/postfix.log through postlogd. Needs root."""

    def __init__(self, tls, domains=("postfix.test",), hostname="mx.postfix.test",
                 client_ca=None, port=None):
        self.root = Path(tempfile.mkdtemp(prefix="starling-postfix-"))
        os.chmod(self.root, 0o755)  # Postfix's daemons run as 'postfix' and 'nobody'
        self.etc = self.root / "etc"
        self.queue = self.root / "queue"
        self.data = self.root / "data"
        self.mail = self.root / "mail"
        for d in (self.etc, self.queue, self.data, self.mail):
            d.mkdir()
        shutil.chown(self.data, "postfix")
        shutil.chown(self.mail, "nobody", "nogroup")
        self.log_path = self.root / "postfix.log"
        self.port = port or free_port()
        self.domains = list(domains)
        self.hostname = hostname
        cert, key = (tls.cert, tls.key) if hasattr(tls, "cert") else tls
        # Postfix reads the key as root at start; copy both so the paths are world-readable.
        shutil.copy(cert, self.etc / "cert.pem")
        shutil.copy(key, self.etc / "key.pem")
        os.chmod(self.etc / "key.pem", 0o600)
        uid = int(subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True,
                                 check=True).stdout)
        gid = int(subprocess.run(["getent", "group", "nogroup"], capture_output=True, text=True,
                                 check=True).stdout.split(":")[2])
        first = self.domains[0]
        lines = [
            "compatibility_level = 3.6",
            f"queue_directory = {self.queue}",
            f"data_directory = {self.data}",
            f"maillog_file = {self.log_path}",
            f"maillog_file_prefixes = {self.root}",
            f"myhostname = {hostname}",
            f"mydomain = {first}",
            "myorigin = $myhostname",
            "mydestination =",
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "relayhost =",
            "default_transport = error",
            "relay_transport = error",
            "local_transport = error",
            "alias_maps =",
            "alias_database =",
            "biff = no",
            "smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination",
            "smtpd_recipient_restrictions = reject_unauth_destination",
            f"virtual_mailbox_domains = {' '.join(self.domains)}",
            f"virtual_mailbox_base = {self.mail}",
            f"virtual_mailbox_maps = static:{first}/user/",
            f"virtual_uid_maps = static:{uid}",
            f"virtual_gid_maps = static:{gid}",
            "smtpd_tls_security_level = may",
            f"smtpd_tls_cert_file = {self.etc / 'cert.pem'}",
            f"smtpd_tls_key_file = {self.etc / 'key.pem'}",
            "smtpd_tls_protocols = >=TLSv1.2",
            "smtpd_tls_loglevel = 1",
            "smtpd_tls_received_header = yes",
            "smtpd_tls_ask_ccert = yes",
        ]
        if client_ca:
            shutil.copy(client_ca, self.etc / "client-ca.pem")
            lines.append(f"smtpd_tls_CAfile = {self.etc / 'client-ca.pem'}")
        (self.etc / "main.cf").write_text("\n".join(lines) + "\n")
        (self.etc / "master.cf").write_text(
            f"{HOST}:{self.port} inet n - n - 20 smtpd\n"
            "pickup     unix  n - n 60    1 pickup\n"
            "cleanup    unix  n - n -     0 cleanup\n"
            "qmgr       unix  n - n 300   1 qmgr\n"
            "tlsmgr     unix  - - n 1000? 1 tlsmgr\n"
            "rewrite    unix  - - n -     - trivial-rewrite\n"
            "bounce     unix  - - n -     0 bounce\n"
            "defer      unix  - - n -     0 bounce\n"
            "trace      unix  - - n -     0 bounce\n"
            "verify     unix  - - n -     1 verify\n"
            "flush      unix  n - n 1000? 0 flush\n"
            "proxymap   unix  - - n -     - proxymap\n"
            "proxywrite unix  - - n -     1 proxymap\n"
            "showq      unix  n - n -     - showq\n"
            "error      unix  - - n -     - error\n"
            "retry      unix  - - n -     - error\n"
            "discard    unix  - - n -     - discard\n"
            "virtual    unix  - n n -     - virtual\n"
            "anvil      unix  - - n -     1 anvil\n"
            "scache     unix  - - n -     1 scache\n"
            "postlog    unix-dgram n - n - 1 postlogd\n")
        self.started = False

    def _postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, "-c", str(self.etc), *args], capture_output=True,
                              text=True, timeout=timeout)

    def start(self, timeout=20.0):
        r = self._postfix("check")
        if r.returncode != 0:
            raise RuntimeError(f"postfix check failed:\n{r.stdout}{r.stderr}\n{self.log_text()}")
        r = self._postfix("start")
        if r.returncode != 0:
            raise RuntimeError(f"postfix start failed:\n{r.stdout}{r.stderr}\n{self.log_text()}")
        self.started = True

        def listening():
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    s.settimeout(5)
                    return s.recv(512).startswith(b"220")
            except OSError:
                return False
        if not wait_until(listening, timeout, 0.1):
            raise RuntimeError(f"postfix smtpd not answering on {self.port}:\n{self.log_text()}")
        return self

    def stop(self):
        if not self.started:
            return
        self.started = False
        pid_file = self.queue / "pid" / "master.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            pid = None
        r = self._postfix("stop")
        if pid is None:
            return
        if r.returncode != 0:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass

        def gone():
            try:
                os.kill(pid, 0)
                return False
            except OSError:
                return True
        if not wait_until(gone, 10.0, 0.1):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def remove(self):
        self.stop()
        if os.environ.get("STARLING_KEEP"):
            print(f"[kept {self.root}]", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.remove()

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def smart_host(self):
        return f"[{HOST}]:{self.port}"

    def delivered(self):
        return sorted(p for p in self.mail.glob("*/*/new/*") if p.is_file())

    def wait_delivered(self, token, timeout=20.0):
        needle = token.encode()

        def found():
            return [p for p in self.delivered() if needle in p.read_bytes()]
        return wait_until(found, timeout, 0.1) or []

    def send_test_message(self, sender, rcpt, token, timeout=10):
        """Plain smtplib submission straight to this Postfix (checks the instance works)."""
        import smtplib
        with smtplib.SMTP(HOST, self.port, timeout=timeout) as s:
            s.sendmail(sender, [rcpt], f"Subject: {token}\r\n\r\n{token}\r\n")


# --- the sink as its own process (relay crash test) -----------------------------------------

class SinkProcess:
    """`python3 peers.py sink` in a child process; accepted messages are read back from the
    JSON-lines record file."""

    def __init__(self, record_path, port=None):
        self.record = Path(record_path)
        self.port = port or free_port()
        self.proc = None

    def start(self, timeout=15.0):
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "sink", "--port", str(self.port),
             "--record", str(self.record)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        line = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(b"ready") or not line:
                break
        if not line.startswith(b"ready"):
            self.stop()
            raise RuntimeError(f"sink process did not start: {line!r}")
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self):
        for _ in iter(self.proc.stdout.readline, b""):
            pass

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def records(self):
        out = []
        try:
            text = self.record.read_text(errors="replace")
        except FileNotFoundError:
            return out
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line being written
        return out

    def message_ids(self):
        return collections.Counter(r.get("message_id") for r in self.records())

    def smart_host(self):
        return f"[{HOST}]:{self.port}"


def _run_sink_process(args):
    record = open(args.record, "a", buffering=1)
    lock = threading.Lock()
    sink = Sink(port=args.port, hostname="crash-sink.example.net")
    original = sink.accepted

    def accepted(msg):
        original(msg)
        with lock:
            record.write(json.dumps({"message_id": msg.message_id(), "mail_from": msg.mail_from,
                                     "rcpt_tos": msg.rcpt_tos, "connection": msg.connection,
                                     "size": len(msg.data)}) + "\n")
            record.flush()
        # keep memory flat: the record file is the truth
        with sink.lock:
            sink.messages.clear()
    sink.accepted = accepted
    sink.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    sink.stop()
    record.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sink", help="run a recording Sink until SIGTERM")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--record", required=True, help="JSON lines, one per accepted message")
    args = ap.parse_args(argv)
    if args.cmd == "sink":
        _run_sink_process(args)


if __name__ == "__main__":
    main()
