"""One test toolkit for tests/ and bench/: real local servers and processes, and bounded waits.

    wait_for(condition, timeout, interval)   poll until truthy, else WaitTimeout naming what never happened
    free_port()                              a free TCP port on 127.0.0.1
    spawn / stop / kill / interrupt          processes in their own group, stopped with their whole tree
    kill_leftovers                           the session's safety net: kills whatever the run left behind
    Target, Receiver                         HTTP target to check, webhook receiver to alert (switchable)
    SMTPServer                               aiosmtpd on a free port, keeps the messages
    TCPListener, TLSServer, DNSServer, issue a TCP port, a TLS server with certificates made here, a UDP DNS server
    PrefectServer, retry_api                 a real Prefect server; retrying API calls while it is busy
    Proxy                                    a local forward HTTP proxy (one location's path): refuse, blackhole
    Postgres                                 a throwaway PostgreSQL server
    ForkedCLI, CLI (toolkit.forked_cli)      alerting commands as processes forked from one that imported the CLI
                                             (CLI.run: subprocess.run's interface, each child with the call's env)

Use from tests (tests/ is on sys.path) as ``from toolkit import ...``; bench/common.py puts tests/ on
sys.path for the benches.
"""

from .http import Receiver, Request, Route, Target
from .netservers import DNSServer, TCPListener, TLSServer, issue
from .ports import free_port
from .postgres import Postgres, find_bin
from .prefect import PrefectServer, migrated_database, retry_api, seed_prefect_home
from .processes import die_with_parent, interrupt, kill, kill_leftovers, spawn, stop
from .proxy import Proxy
from .smtp import SMTPServer
from .waiting import WaitTimeout, wait_for

__all__ = [
    "DNSServer", "PrefectServer", "Postgres", "Proxy", "TCPListener", "TLSServer", "Receiver", "Request", "Route", "SMTPServer", "Target", "WaitTimeout",
    "die_with_parent", "find_bin", "free_port", "interrupt", "issue", "kill", "kill_leftovers", "migrated_database", "retry_api",
    "seed_prefect_home", "spawn", "stop", "wait_for",
]
