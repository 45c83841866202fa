"""Running the `starling` management shell from end-to-end tests.

The shell talks to the daemon of a fixture `Starling` over DIR/control.sock; the data directory
is passed the way an administrator would, in STARLING_DATA_DIR. stdin is /dev/null unless a test
says otherwise, so the shell never has a terminal to ask on. `user=` runs it as another Unix user
through runuser(1) (tests run as root). Standard library only.
"""

import base64
import itertools
import json
import os
import re
import socket
import subprocess
import time
import unittest

from starling_fixture import HOST, bin_dir

BINARY_WAIT = 120.0  # the binaries may be rebuilt while tests run: wait for them to come back


def starling_binary():
    path = bin_dir() / "starling"
    deadline = time.monotonic() + BINARY_WAIT
    while not os.access(path, os.X_OK):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} is missing or not executable")
        time.sleep(0.5)
    return str(path)


def run_starling(data_dir, *args, user=None, env=None, stdin=subprocess.DEVNULL, timeout=90,
                 wrap=None):
    """CompletedProcess (text) of `starling ARGS` for `data_dir`, as root or as `user` (or
    under the command prefix `wrap`, e.g. setpriv)."""
    full_env = dict(os.environ)
    full_env.pop("STARLING_PASSWORD", None)
    full_env["STARLING_DATA_DIR"] = str(data_dir)
    if env:
        full_env.update(env)
    cmd = [starling_binary(), *[str(a) for a in args]]
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    if wrap:
        cmd = [*wrap, *cmd]
    return subprocess.run(cmd, stdin=stdin, capture_output=True, text=True, env=full_env,
                          timeout=timeout)


def skip_unless_usable_by(user):
    """Skips the test (unittest.SkipTest) when `user` cannot run the starling binary at all, as
    when the build sits below a directory only root may enter (a checkout in a 0700 directory):
    every command would then fail with 126 rather than say what the test is about."""
    r = subprocess.run(["runuser", "-u", user, "--", starling_binary(), "--version"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise unittest.SkipTest(f"{bin_dir()} is not usable by other users: {r.stderr.strip()}")


def describe(r):
    return (f"$ {' '.join(r.args)}\nexit {r.returncode}\n--- stdout ---\n{r.stdout}"
            f"--- stderr ---\n{r.stderr}")


def port_accepts(port, timeout=3.0):
    """True if a TCP connection to 127.0.0.1:port is accepted."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def parse_list(text):
    """`--format list` output: a list of records, each a list of (name, value, colon column)."""
    records, current = [], []
    for line in text.splitlines():
        if not line.strip():
            if current:
                records.append(current)
                current = []
            continue
        m = re.match(r"^(\S+)( +): ?(.*)$", line)
        if not m:
            raise AssertionError(f"not a 'Name : value' line: {line!r}\n{text}")
        current.append((m.group(1), m.group(3).rstrip(), len(m.group(1)) + len(m.group(2))))
    if current:
        records.append(current)
    return records


class CliMixin:
    """Assertions around the shell for a DaemonTestCase (uses self.starling)."""

    def cli(self, *args, user=None, env=None, stdin=subprocess.DEVNULL, data_dir=None, wrap=None):
        return run_starling(data_dir or self.starling.data_dir, *args, user=user, env=env,
                            stdin=stdin, wrap=wrap)

    def cli_ok(self, *args, **kw):
        r = self.cli(*args, **kw)
        self.assertEqual(r.returncode, 0, f"expected success:\n{describe(r)}")
        return r

    def cli_json(self, *args, **kw):
        r = self.cli_ok(*args, "--format", "json", **kw)
        try:
            value = json.loads(r.stdout)
        except ValueError as e:
            self.fail(f"--format json printed no JSON ({e}):\n{describe(r)}")
        self.assertIsInstance(value, list, f"--format json must print an array:\n{describe(r)}")
        return value

    def cli_fails(self, code, message_re, *args, **kw):
        """The command exits with `code` (an int or a tuple of ints) and one 'starling: ...'
        line on stderr matching `message_re` (case-insensitive)."""
        r = self.cli(*args, **kw)
        codes = code if isinstance(code, tuple) else (code,)
        self.assertIn(r.returncode, codes, f"expected exit {code}:\n{describe(r)}")
        lines = r.stderr.strip("\n").splitlines()
        self.assertEqual(len(lines), 1, f"an error is one line on stderr:\n{describe(r)}")
        self.assertTrue(lines[0].startswith("starling: "), f"error without 'starling: ':\n{describe(r)}")
        self.assertRegex(lines[0], re.compile(message_re, re.I), describe(r))
        return r

    def snapshot(self, data_dir=None):
        """Everything a management command can change, as root sees it."""
        def get(cmd):
            return self.cli_json(cmd, data_dir=data_dir)
        return {
            "certificates": get("get-certificate"),
            "receive": get("get-receive-connector"),
            "send": get("get-send-connector"),
            "domains": get("get-accepted-domain"),
            "roles": get("get-role-assignment"),
        }

    def events(self, *filters, data_dir=None):
        return self.cli_json("get-event", *filters, data_dir=data_dir)

    def wait_event(self, predicate, *filters, timeout=10.0, data_dir=None):
        """The first event (oldest first) matching `predicate`, polling up to `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events(*filters, data_dir=data_dir) if predicate(e)]
            if found or time.monotonic() > deadline:
                return found[0] if found else None
            time.sleep(0.2)


# --- outbound delivery (send connectors, the queue, reports) ---------------------------------

OUTBOUND_RE = re.compile(r"\boutbound: (.*)$")

# Short retry intervals so a retry comes within a second or two (tests of outbound delivery).
FAST_TRANSPORT = {
    "transient-failure-retry-interval": "00:00:01",
    "transient-failure-retry-count": "6",
    "outbound-connection-failure-retry-interval": "00:00:01",
    "message-retry-interval": "00:00:01",
}


def option_args(props):
    """{"require_tls": True, "smart_hosts": ["a", "b"]} -> ["--require-tls", "true",
    "--smart-hosts", "a,b"] (booleans lower-case, lists comma-joined)."""
    args = []
    for name, value in props.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        args += ["--" + name.replace("_", "-"), str(value)]
    return args


class DeliveryReport:
    """A non-delivery (or delay) report as delivered to a local mailbox: RFC 3464."""

    def __init__(self, path, data):
        import email
        import email.policy
        self.path = path
        self.data = data
        self.text = data.decode("utf-8", errors="replace")
        self.message = email.message_from_bytes(data, policy=email.policy.compat32)
        self.recipients = []   # per-recipient field dicts, names lower-case
        self.per_message = {}
        self.status_part = None
        self.original = None   # the returned message or its headers, as text
        for part in self.message.walk():
            ctype = part.get_content_type()
            if ctype == "message/delivery-status" and self.status_part is None:
                self.status_part = part
                blocks = part.get_payload()
                if isinstance(blocks, str):
                    blocks = [email.message_from_string(b, policy=email.policy.compat32)
                              for b in re.split(r"\r?\n\r?\n", blocks.strip()) if b.strip()]
                for i, block in enumerate(blocks):
                    fields = {k.lower(): re.sub(r"\s+", " ", str(v)).strip()
                              for k, v in block.items()}
                    if i == 0 and "final-recipient" not in fields:
                        self.per_message = fields
                    elif fields:
                        self.recipients.append(fields)
            elif ctype in ("message/rfc822", "text/rfc822-headers") and self.original is None:
                payload = part.get_payload()
                if isinstance(payload, list):
                    self.original = "".join(str(p) for p in payload)
                else:
                    self.original = part.get_payload(decode=True).decode("utf-8", "replace") \
                        if part.get_payload(decode=True) else str(payload)

    def header(self, name):
        value = self.message.get(name)
        return re.sub(r"\s+", " ", str(value)).strip() if value is not None else None

    def recipient(self, address):
        """The per-recipient block whose Final- or Original-Recipient names `address`."""
        for r in self.recipients:
            for key in ("final-recipient", "original-recipient"):
                if address.lower() in r.get(key, "").lower():
                    return r
        return None

    def __repr__(self):
        return f"DeliveryReport({self.path}, recipients={self.recipients})"


class OutboundMixin(CliMixin):
    """Helpers for tests of outbound delivery (uses self.starling)."""

    def allow_relay(self, starling=None):
        """The default receive connector lets every client relay: ExternalAuthoritative
        (its PermissionGroups already include ExchangeServers)."""
        s = starling or self.starling
        self.cli_ok("set-receive-connector", f"Default {s.server_name}",
                    "--auth-mechanism", "Tls, ExternalAuthoritative", data_dir=s.data_dir)

    def set_transport(self, starling=None, **settings):
        s = starling or self.starling
        return self.cli_ok("set-transport-server", *option_args(settings), data_dir=s.data_dir)

    def fast_retries(self, starling=None, **overrides):
        settings = {k.replace("-", "_"): v for k, v in FAST_TRANSPORT.items()}
        settings.update(overrides)
        return self.set_transport(starling, **settings)

    def transport_settings(self, starling=None):
        s = starling or self.starling
        values = self.cli_json("get-transport-server", data_dir=s.data_dir)
        self.assertEqual(len(values), 1, f"get-transport-server: {values}")
        return values[0]

    def new_send_connector(self, name="Out", address_spaces="example.net", starling=None,
                           **props):
        """`new-send-connector --name NAME --address-spaces SPACES --prop value...`; a short
        ConnectionInactivityTimeout unless given."""
        s = starling or self.starling
        props.setdefault("connection_inactivity_timeout", "00:00:03")
        return self.cli_ok("new-send-connector", "--name", name, "--address-spaces",
                           address_spaces, *option_args(props), data_dir=s.data_dir)

    def smart_host_connector(self, smart_hosts, name="Out", address_spaces="example.net",
                             starling=None, **props):
        return self.new_send_connector(name, address_spaces, starling,
                                       dns_routing_enabled=False, smart_hosts=smart_hosts,
                                       **props)

    def set_send_connector(self, name, starling=None, **props):
        s = starling or self.starling
        return self.cli_ok("set-send-connector", name, *option_args(props), data_dir=s.data_dir)

    # --- submitting mail to Starling -----------------------------------------------------------

    def submit(self, rcpts, data, sender="sender@example.test", mail_options=(),
               starling=None, helo="client.test"):
        """One transaction over smtplib; every RCPT and the DATA must get 250. Returns the
        queue id from '250 2.0.0 OK queued as <id>'."""
        import smtplib
        s = starling or self.starling
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        if isinstance(data, str):
            data = data.encode()
        with smtplib.SMTP(HOST, s.port, local_hostname=helo, timeout=20) as c:
            c.ehlo()
            code, resp = c.mail(sender, list(mail_options))
            self.assertEqual(code, 250, f"MAIL FROM:<{sender}>: {code} {resp!r}")
            for r in rcpts:
                code, resp = c.rcpt(r)
                self.assertEqual(code, 250, f"RCPT TO:<{r}>: {code} {resp!r}")
            code, resp = c.data(data)
            self.assertEqual(code, 250, f"DATA: {code} {resp!r}")
            m = re.match(r"^2\.0\.0 OK queued as (\S+)", resp.decode(errors="replace"))
            self.assertIsNotNone(m, f"expected '2.0.0 OK queued as <id>', got {resp!r}")
            return m.group(1)

    def rcpt_reply(self, rcpt, sender="sender@example.test", starling=None):
        """(code, text) of RCPT TO:<rcpt> after MAIL FROM:<sender>."""
        import smtplib
        s = starling or self.starling
        with smtplib.SMTP(HOST, s.port, local_hostname="client.test", timeout=20) as c:
            c.ehlo()
            code, resp = c.mail(sender)
            self.assertEqual(code, 250, resp)
            code, resp = c.rcpt(rcpt)
            return code, resp.decode(errors="replace")

    @staticmethod
    def make_message(token, extra_headers="", body=None, sender="sender@example.test",
                     to="rcpt@example.net"):
        body = body if body is not None else f"body of {token}\r\n"
        return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {token}\r\n"
                f"Message-ID: <{token}@client.test>\r\n{extra_headers}\r\n{body}")

    # --- what the daemon says --------------------------------------------------------------------

    def outbound_lines(self, *needles, word=None, starling=None):
        """`outbound: ` lines of daemon.log containing every needle whose status (the first of
        delivered/deferred/failed in the line) is `word`, if given."""
        s = starling or self.starling
        out = []
        for line in s.log_text().splitlines():
            m = OUTBOUND_RE.search(line)
            if not m:
                continue
            if word:
                # The status is the first of the three words: "deferred (...): TLS negotiation
                # failed" is deferred.
                status = re.search(r"\b(delivered|deferred|failed)\b", m.group(1))
                if not status or status.group(1) != word:
                    continue
            if all(n in line for n in needles):
                out.append(line)
        return out

    def wait_outbound(self, word, *needles, timeout=15.0, count=1, starling=None):
        """Waits for `count` outbound lines with `word` (delivered/deferred/failed) and the
        needles (queue id, recipient...); fails with the outbound log so far."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.outbound_lines(*needles, word=word, starling=starling)
            if len(lines) >= count:
                return lines
            if time.monotonic() > deadline:
                self.fail(f"no{'' if count == 1 else f' {count}'} 'outbound: ... {word}' line "
                          f"with {needles} within {timeout} s; outbound lines so far:\n"
                          + "\n".join(self.outbound_lines(starling=starling)[-40:]))
            time.sleep(0.1)

    def event_after(self, event_id, since, predicate=lambda e: True, timeout=15.0,
                    starling=None):
        s = starling or self.starling
        found = self.wait_event(lambda e: e.get("Index", 0) > since and predicate(e),
                                "--id", str(event_id), timeout=timeout, data_dir=s.data_dir)
        self.assertIsNotNone(found, f"no event {event_id} (after index {since}) within "
                             f"{timeout} s; events: "
                             f"{self.events('--newest', '20', data_dir=s.data_dir)}")
        return found

    def event_mark(self, starling=None):
        s = starling or self.starling
        return max((e.get("Index", 0) for e in self.events(data_dir=s.data_dir)), default=0)

    # --- reports -------------------------------------------------------------------------------

    def reports(self, user="sender", domain="example.test", starling=None):
        s = starling or self.starling
        return [DeliveryReport(p, s.read(p)) for p in s.delivered(user=user, domain=domain)]

    def wait_report(self, token, user="sender", domain="example.test", timeout=20.0,
                    starling=None):
        """The report delivered to <user@domain> that mentions `token` (the original's
        Subject or Message-ID, returned inside the report)."""
        s = starling or self.starling
        found = s.wait_for(token, user=user, domain=domain, timeout=timeout)
        self.assertTrue(found, f"no report mentioning {token!r} in the mailbox of "
                        f"{user}@{domain} within {timeout} s; mailboxes: {s.delivered()}\n"
                        "outbound lines:\n" + "\n".join(self.outbound_lines(starling=s)[-30:]))
        return DeliveryReport(found[0], s.read(found[0]))

    def assertReport(self, report, recipient, status, diagnostic=None, action="failed",
                     postmaster="postmaster@example.test"):
        """An RFC 3464 report from `postmaster` naming `recipient` with Status `status`
        (exact, or a prefix ending in '.'), and `diagnostic` in Diagnostic-Code if given."""
        ctype = report.message.get_content_type()
        self.assertEqual(ctype, "multipart/report", f"report Content-Type: {ctype}\n{report.text}")
        self.assertEqual(report.message.get_param("report-type"), "delivery-status",
                         report.text[:600])
        self.assertIn(postmaster, report.header("From") or "", f"report From:\n{report.text[:600]}")
        block = report.recipient(recipient)
        self.assertIsNotNone(block, f"report has no per-recipient block for {recipient}: "
                             f"{report.recipients}\n{report.text[:2000]}")
        got = block.get("status", "")
        self.assertTrue(got == status or (status.endswith(".") and got.startswith(status)),
                        f"Status {got!r}, expected {status!r}: {block}")
        self.assertEqual(block.get("action", "").lower(), action, block)
        if diagnostic is not None:
            self.assertIn(diagnostic.lower(), block.get("diagnostic-code", "").lower(), block)
        return block

    def wait_no_new_mail(self, quiet=2.0, starling=None, peers=()):
        """Nothing new in any mailbox (nor at `peers`) for `quiet` s: returns what was there."""
        s = starling or self.starling
        before = set(s.delivered())
        peer_before = [len(p.all()) for p in peers]
        deadline = time.monotonic() + quiet
        while time.monotonic() < deadline:
            now = set(s.delivered())
            if now - before:
                self.fail(f"unexpected mail: {sorted(now - before)}:\n"
                          + "\n".join(s.read(p).decode(errors='replace')[:1500]
                                      for p in sorted(now - before)))
            for p, n in zip(peers, peer_before):
                if len(p.all()) != n:
                    self.fail(f"unexpected mail at a peer: {p.all()[n:]}")
            time.sleep(0.1)
        return before


# --- recipients and SMTP AUTH (mailboxes, groups, accepted domain types, submission) ------------

_secret_files = itertools.count(1)


def b64(data):
    """Base64 of a str (UTF-8) or bytes, as str."""
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def auth_plain_blob(user, password, authzid=""):
    """The RFC 4616 PLAIN response, base64: [authzid] NUL authcid NUL passwd."""
    return b64(f"{authzid}\0{user}\0{password}")


def secret_forms(user, password):
    """{description: text} of everything that must never show in a log, event or output for a
    client that authenticated (or tried to) as `user` with `password`: the password, its base64
    (the LOGIN answer, also without padding), the PLAIN response with and without authzid, and the
    LOGIN username answer (an AUTH payload too)."""
    forms = {
        "password": password,
        "base64(password) (AUTH LOGIN answer)": b64(password),
        "base64(password) unpadded": b64(password).rstrip("="),
        "AUTH PLAIN response": auth_plain_blob(user, password),
        "AUTH PLAIN response unpadded": auth_plain_blob(user, password).rstrip("="),
        "AUTH PLAIN response with authzid": auth_plain_blob(user, password, authzid=user),
        "base64(user) (AUTH LOGIN username answer)": b64(user),
    }
    return forms


class RecipientMixin(OutboundMixin):
    """Mailboxes, distribution groups, accepted domain types and the submission connector
    (`Client <server>`), for a DaemonTestCase (uses self.starling). Passwords go through a file
    in the instance's root (beside, not inside, the data directory), first line the password."""

    def password_file(self, password, starling=None):
        s = starling or self.starling
        path = s.root / f"password-{next(_secret_files)}.txt"
        path.write_text(password + "\n")
        path.chmod(0o600)
        return path

    def new_mailbox(self, address, password=None, email_addresses=(), name=None, starling=None,
                    **props):
        """`new-mailbox --address A [--name N] [--email-addresses smtp:x,...]
        [--password-file F] [--prop value]...`; addresses without a prefix get `smtp:`."""
        s = starling or self.starling
        args = ["new-mailbox", "--address", address]
        if name is not None:
            args += ["--name", name]
        if email_addresses:
            args += ["--email-addresses", ",".join(a if ":" in a else f"smtp:{a}"
                                                   for a in email_addresses)]
        if password is not None:
            args += ["--password-file", str(self.password_file(password, s))]
        return self.cli_ok(*args, *option_args(props), data_dir=s.data_dir)

    def set_mailbox(self, identity, password=None, starling=None, **props):
        s = starling or self.starling
        args = ["set-mailbox", identity]
        if password is not None:
            args += ["--password-file", str(self.password_file(password, s))]
        return self.cli_ok(*args, *option_args(props), data_dir=s.data_dir)

    def get_mailbox(self, identity=None, *extra, starling=None):
        s = starling or self.starling
        args = ["get-mailbox"] + ([identity] if identity else []) + list(extra)
        return self.cli_json(*args, data_dir=s.data_dir)

    def remove_mailbox(self, identity, starling=None):
        s = starling or self.starling
        return self.cli_ok("remove-mailbox", identity, "--yes", data_dir=s.data_dir)

    def new_distribution_group(self, address, members, starling=None, **props):
        s = starling or self.starling
        return self.cli_ok("new-distribution-group", "--address", address,
                           "--members", ",".join(members), *option_args(props),
                           data_dir=s.data_dir)

    def new_accepted_domain(self, domain, domain_type="Authoritative", starling=None, **props):
        s = starling or self.starling
        return self.cli_ok("new-accepted-domain", domain, "--domain-type", domain_type,
                           *option_args(props), data_dir=s.data_dir)

    def client_connector(self, starling=None):
        """The submission connector `starling setup` creates: `Client <server name>`."""
        s = starling or self.starling
        return f"Client {s.server_name}"

    def submission_port(self, starling=None):
        """The port of `Client <server>`: the fixture's `submission_port` (setup
        --submission-listen); with an older fixture, the connector is moved to a free
        loopback port."""
        s = starling or self.starling
        port = getattr(s, "submission_port", None)
        if port:
            return port
        from starling_fixture import free_port
        port = free_port()
        self.cli_ok("set-receive-connector", self.client_connector(s),
                    "--bindings", f"{HOST}:{port}", data_dir=s.data_dir)
        s.submission_port = port
        return port
