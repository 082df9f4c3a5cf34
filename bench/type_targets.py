"""Targets for the non-HTTP check types, in their own process (their CPU is not the monitor's): a TCP
listener, a TLS server with a certificate from a CA made here, a UDP DNS server answering
``svcN.bench`` A records. Prints one JSON line: ports, the DNS address and the CA file to trust.

    python bench/type_targets.py --names 1000 --dir /tmp/x
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from toolkit import DNSServer, TCPListener, TLSServer, issue


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    directory = Path(args.dir)
    ca = issue("Bench CA", ca=True, not_after=dt.timedelta(days=3650))
    (directory / "ca.pem").write_bytes(ca.cert_pem)
    tcp = TCPListener()
    tls = TLSServer(issue("bench", issuer=ca), directory)
    dns = DNSServer()
    for i in range(args.names):
        dns.records[(f"svc{i}.bench", "A")] = [f"10.0.{i // 256}.{i % 256}"]
    print(json.dumps({"tcp": tcp.port, "tls": tls.port, "dns": dns.address, "ca": str(directory / "ca.pem")}),
          flush=True)
    signal.sigwait({signal.SIGINT, signal.SIGTERM})


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    main()
