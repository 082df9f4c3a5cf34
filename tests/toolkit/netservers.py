"""Real non-HTTP servers on 127.0.0.1 for the check types: a TCP listener, a TLS server with
certificates made here (``cryptography``), and a UDP DNS server (dnspython messages). Each runs in
a daemon thread of this process and is switched between behaviours by setting attributes."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _stop_listening(sock: socket.socket) -> None:
    """Close a socket another thread may be blocked on (close alone leaves a listener accepting)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class TCPListener:
    """Accepts connections on a free port; ``reply`` (bytes) is sent after the first line received
    (or at once when ``greet``), then the connection closes; with ``converse``, every request read on
    a connection gets ``converse(request)`` until the client closes it (keep-alive). ``accepted``
    counts connections; ``close()`` stops listening, so the port refuses."""

    def __init__(self, reply: bytes | None = None, greet: bool = False,
                 converse: Callable[[bytes], bytes] | None = None) -> None:
        self.reply, self.greet, self.converse = reply, greet, converse
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self.converse is not None:
                    while request := conn.recv(65536):
                        conn.sendall(self.converse(request))
                    return
                if self.reply is not None and not self.greet:
                    conn.settimeout(5)
                    conn.recv(4096)
                if self.reply is not None:
                    conn.sendall(self.reply)
            except OSError:
                pass

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def close(self) -> None:
        _stop_listening(self.sock)


# --- certificates ---------------------------------------------------------------------------------

@dataclass
class Issued:
    cert_pem: bytes
    key_pem: bytes
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert.write_bytes(self.cert_pem)
        key.write_bytes(self.key_pem)
        return cert, key


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def issue(
    common_name: str,
    *,
    issuer: Issued | None = None,
    ca: bool = False,
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
    not_before: dt.timedelta = dt.timedelta(days=-30),
    not_after: dt.timedelta = dt.timedelta(days=90),
) -> Issued:
    """A certificate (self-signed when ``issuer`` is None) valid from now+not_before to now+not_after."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + not_before)
        .not_valid_after(now + not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        cert,
        key,
    )


class TLSServer:
    """A TLS server presenting ``leaf``; answers an HTTP request with ``body`` (so https monitors
    work too), then closes. ``leaf`` may be replaced between checks."""

    def __init__(self, leaf: Issued, directory: Path, body: bytes = b"ok") -> None:
        self.directory, self.body = directory, body
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        self.use(leaf)
        threading.Thread(target=self._serve, daemon=True).start()

    def use(self, leaf: Issued) -> None:
        cert, key = leaf.write(self.directory, f"leaf-{id(leaf)}")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.context = context

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn, self.context), daemon=True).start()

    def _talk(self, conn: socket.socket, context: ssl.SSLContext) -> None:
        conn.settimeout(5)
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                data = tls.recv(65536)
                if data:
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                                % (len(self.body), self.body))
        except (OSError, ssl.SSLError):
            conn.close()

    def close(self) -> None:
        _stop_listening(self.sock)


# --- DNS --------------------------------------------------------------------------------------------

class DNSServer:
    """A UDP DNS server: ``records[(name, type)] = [values]`` answers; a name without any record is
    NXDOMAIN; ``silent = True`` answers nothing (the resolver times out)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.silent = False
        self.queries = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        import dns.exception
        import dns.message
        import dns.rcode
        import dns.rrset

        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            self.queries += 1
            if self.silent:
                continue
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                continue  # not a DNS query (a stray datagram from another test's probe of a freed port)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            values = self.records.get((name, rdtype))
            if values:
                response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", rdtype, values))
            elif not any(n == name for n, _ in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        _stop_listening(self.sock)
