"""A small authoritative DNS server on loopback for tests: UDP and TCP on one port, answering
from a dict zone that may be changed while it runs. Standard library + dnslib (python3-dnslib).

Zone: {name: {TYPE: records} | ACTION}. Names are case-insensitive, trailing dot optional.
  "example.test":  {"MX": [(10, "mx1.example.test")], "A": ["192.0.2.1"], "AAAA": ["2001:db8::1"],
                    "TXT": ["v=spf1 -all"], "CNAME": "other.test"}
  "nullmx.test":   {"MX": [(0, ".")]}                   # RFC 7505 null MX
  "servfail.test": "SERVFAIL"                           # every type; also per type: {"AAAA": "SERVFAIL"}
Actions: "SERVFAIL", "REFUSED", "NXDOMAIN", "TIMEOUT" (never answer). A name not in the zone is
NXDOMAIN, unless it is the parent of a zone name (an empty non-terminal: NOERROR, no data); a name
without the asked type is NOERROR with no answer (NODATA). A CNAME is followed inside the zone, as a
recursive resolver would. UDP answers over 512 octets (or the query's EDNS size) come back with TC
set, so the client retries over TCP (RFC 1035 §4.2.1, RFC 7766).

As a module:  with DnsServer(zone={...}) as dns: ... dns.port ... dns.zone["x.test"] = "SERVFAIL"
As a script:  /usr/bin/python3 dns_server.py [--port 0] [--host 127.0.0.1] [--zone zone.json]
              [--log queries.log] [--no-tcp]
  prints the port on its first line of stdout, then serves until SIGTERM/SIGINT. The JSON zone has
  the same shape (MX records as [pref, host] pairs) and is re-read when the file changes. --log
  appends "NAME TYPE" (lower-case name, no trailing dot) per query, flushed at once.
"""

import argparse
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import traceback

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A, DNSError, DNSRecord

ACTIONS = ("SERVFAIL", "REFUSED", "NXDOMAIN", "TIMEOUT")
DEFAULT_TTL = 300
MAX_UDP = 512  # RFC 1035 §4.2.1, without EDNS
MAX_CNAME_CHAIN = 8


def normalize(name):
    return str(name).rstrip(".").lower()


def _rdata(rtype, value):
    if rtype == "A":
        return A(value)
    if rtype == "AAAA":
        return AAAA(value)
    if rtype == "MX":
        preference, host = value
        return MX(host if host else ".", int(preference))
    if rtype == "CNAME":
        return CNAME(value)
    if rtype == "TXT":
        return TXT(value)
    raise ValueError("dns_server: unsupported record type " + rtype)


class DnsServer:
    """DnsServer(port=0, zone=None, host="127.0.0.1", tcp=True, log_path=None).

    start() binds (UDP, and TCP on the same port) and serves on a thread; returns self.
    stop() stops and closes everything. .port is the bound port after start(). .zone is the
    dict answered from, read afresh for every query. .queries lists (name, TYPE) as asked.
    """

    def __init__(self, port=0, zone=None, host="127.0.0.1", tcp=True, log_path=None):
        self.host = host
        self.port = port
        self.zone = zone if zone is not None else {}
        self.tcp = tcp
        self.log_path = log_path
        self.queries = []
        self._lock = threading.Lock()
        self._thread = None
        self._udp = None
        self._listener = None
        self._wake_r, self._wake_w = None, None
        self._stopping = False

    # -- life cycle ---------------------------------------------------------------------------

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(20):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.bind((self.host, self.port))
            port = udp.getsockname()[1]
            if not self.tcp:
                break
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((self.host, port))
                break
            except OSError:
                listener.close()
                udp.close()
                if self.port:
                    raise
        else:
            raise OSError("dns_server: no port free for both UDP and TCP")
        self._udp, self.port = udp, port
        if self.tcp:
            listener.listen(16)
            self._listener = listener
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="dns_server", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is None:
            return
        self._stopping = True
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        self._thread = None
        for s in (self._udp, self._listener):
            if s is not None:
                s.close()
        self._udp = self._listener = None
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def query_count(self, name=None, rtype=None):
        with self._lock:
            return sum(1 for n, t in self.queries
                       if (name is None or n == normalize(name)) and (rtype is None or t == rtype))

    # -- answering ----------------------------------------------------------------------------

    def answer(self, data, max_size=None):
        """The reply to the wire-format query `data`, or None to stay silent."""
        try:
            request = DNSRecord.parse(data)
        except (DNSError, struct.error, IndexError):
            return None
        if not request.questions:
            return None
        question = request.q
        name = normalize(question.qname)
        rtype = QTYPE.get(question.qtype, str(question.qtype))
        self._record_query(name, rtype)
        reply = request.reply()  # qr, aa, ra; same id and question
        try:
            zone = {normalize(k): v for k, v in list(self.zone.items())}
            action = self._resolve(zone, name, rtype, reply, 0)
        except Exception:  # a malformed zone entry: say so, and keep serving
            traceback.print_exc(file=sys.stderr)
            reply = request.reply()
            action = "SERVFAIL"
        if action == "TIMEOUT":
            return None
        if action is not None:
            reply.header.rcode = getattr(RCODE, action)
        wire = reply.pack()
        if max_size is not None:
            limit = MAX_UDP
            for rr in request.ar:
                if rr.rtype == QTYPE.OPT:
                    limit = max(MAX_UDP, rr.rclass)
            if len(wire) > limit:
                truncated = request.reply()  # keeps the question, as resolvers expect
                truncated.header.tc = 1
                wire = truncated.pack()
        return wire

    def _resolve(self, zone, name, rtype, reply, depth):
        """Adds the answer for (name, rtype) to reply; returns an action name or None."""
        entry = zone.get(name)
        if entry is None:
            if any(other.endswith("." + name) for other in zone):
                return None  # empty non-terminal: NODATA
            return "NXDOMAIN"
        if isinstance(entry, str):
            return self._action(entry)
        types = {str(k).upper(): v for k, v in entry.items()}
        if rtype in types:
            records = types[rtype]
            if isinstance(records, str) and records.upper() in ACTIONS:
                return self._action(records)
            if rtype == "CNAME" and isinstance(records, str):
                records = [records]
            for value in records:
                rdata = _rdata(rtype, tuple(value) if rtype == "MX" else value)
                reply.add_answer(RR(name, getattr(QTYPE, rtype), rdata=rdata, ttl=DEFAULT_TTL))
            return None
        if "CNAME" in types and depth < MAX_CNAME_CHAIN:
            target = types["CNAME"]
            if not isinstance(target, str):
                target = target[0]
            reply.add_answer(RR(name, QTYPE.CNAME, rdata=CNAME(target), ttl=DEFAULT_TTL))
            return self._resolve(zone, normalize(target), rtype, reply, depth + 1)
        return None  # NODATA

    @staticmethod
    def _action(text):
        action = text.upper()
        if action not in ACTIONS:
            raise ValueError("dns_server: unknown action " + text)
        return action

    def _record_query(self, name, rtype):
        with self._lock:
            self.queries.append((name, rtype))
            if self.log_path:
                with open(self.log_path, "a", encoding="ascii") as log:
                    log.write(f"{name} {rtype}\n")

    # -- serving ------------------------------------------------------------------------------

    def _serve(self):
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        sel.register(self._udp, selectors.EVENT_READ, "udp")
        if self._listener is not None:
            sel.register(self._listener, selectors.EVENT_READ, "listen")
        buffers = {}
        try:
            while not self._stopping:
                for key, _ in sel.select():
                    if key.data == "wake":
                        continue
                    if key.data == "udp":
                        self._serve_udp()
                    elif key.data == "listen":
                        conn, _ = self._listener.accept()
                        buffers[conn] = b""
                        sel.register(conn, selectors.EVENT_READ, "tcp")
                    else:
                        if not self._serve_tcp(key.fileobj, buffers):
                            sel.unregister(key.fileobj)
                            del buffers[key.fileobj]
                            key.fileobj.close()
        finally:
            for conn in buffers:
                conn.close()
            sel.close()

    def _serve_udp(self):
        try:
            data, peer = self._udp.recvfrom(65535)
        except OSError:
            return
        wire = self.answer(data, max_size=MAX_UDP)
        if wire is not None:
            try:
                self._udp.sendto(wire, peer)
            except OSError:
                pass

    def _serve_tcp(self, conn, buffers):
        """Reads what is there; answers each whole message (RFC 1035 §4.2.2 length prefix)."""
        try:
            data = conn.recv(65535)
        except OSError:
            return False
        if not data:
            return False
        buffers[conn] += data
        while len(buffers[conn]) >= 2:
            (length,) = struct.unpack("!H", buffers[conn][:2])
            if len(buffers[conn]) < 2 + length:
                break
            message, buffers[conn] = buffers[conn][2:2 + length], buffers[conn][2 + length:]
            wire = self.answer(message)
            if wire is not None:
                try:
                    conn.sendall(struct.pack("!H", len(wire)) + wire)
                except OSError:
                    return False
        return True


class _ZoneFile(dict):
    """A JSON zone file, re-read when its modification time changes."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.mtime = None
        self.reload()

    def reload(self):
        mtime = os.stat(self.path).st_mtime_ns
        if mtime != self.mtime:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            self.clear()
            self.update(data)
            self.mtime = mtime

    def items(self):
        try:
            self.reload()
        except (OSError, ValueError):
            pass  # a half-written file: keep the last good zone
        return super().items()


def main(argv=None):
    parser = argparse.ArgumentParser(description="authoritative DNS server for tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--zone", help="JSON zone file (re-read when it changes)")
    parser.add_argument("--log", help="append 'NAME TYPE' per query to this file")
    parser.add_argument("--no-tcp", action="store_true")
    args = parser.parse_args(argv)
    zone = _ZoneFile(args.zone) if args.zone else {}
    server = DnsServer(port=args.port, zone=zone, host=args.host, tcp=not args.no_tcp,
                       log_path=args.log)
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(server.port, flush=True)
    while not done.wait(3600):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
