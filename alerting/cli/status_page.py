"""``alerting status-page build | serve``: the public status page (alerting/status_page/), built
from the state store into a static directory, and a read-only server of it for a quick look."""

from __future__ import annotations

from pathlib import Path

import typer

from alerting.cli.app import (
    ConfigOption,
    app,
    command,
    fail,
    load,
    out,
    report_problems,
    sub_app,
    with_block_monitors,
)

status_page_app = sub_app("status-page", "The public status page: a static site built from the state store.")
app.add_typer(status_page_app)


@command(status_page_app)
def build(
    config: Path = ConfigOption,
    out_dir: Path | None = typer.Option(
        None, "--out", metavar="DIR", help="Directory of the site (default: status_page.out in the config)."),
) -> None:
    """Build the status page (index.html, status.json, badges/<monitor>.svg) from the state store and
    write it atomically: a web server serving DIR sees the old site or the new one, never half of
    one. Publish DIR with any static web server, object store or Pages host."""
    from alerting.cycle import open_store
    from alerting.status_page.build import build_site, site_dir
    from alerting.status_page.write import SiteError, check_target
    from alerting.store import StoreError

    cfg = load(config)
    page_problems = [p for p in cfg.problems if (p.field or "").startswith("status_page")]
    if page_problems:
        report_problems(cfg)
        fail(f"{len(page_problems)} problem{'s' if len(page_problems) != 1 else ''} in {config} (no page was built)")
    target = site_dir(cfg, out_dir)
    if target is None:
        fail(f"{config}: field 'status_page': not in the config; give --out DIR or add a status_page: section")
    if cfg.status_page is not None:
        listed = [m.name for m in cfg.status_page.monitors]
        if not set(listed) <= {s.name for s in cfg.monitors}:
            cfg = with_block_monitors(cfg)  # a name not in the YAML file may be a Service Monitor block
        names = {s.name for s in cfg.monitors}
        unknown = [f"{config}: field 'status_page.monitors[{i}]': no monitor named {name!r}"
                   for i, name in enumerate(listed) if name not in names]
        if unknown:
            fail("; ".join(unknown))
    try:
        check_target(target)
    except SiteError as exc:
        fail(str(exc))
    try:
        store = open_store(cfg)
    except StoreError as exc:
        fail(f"{config}: field 'state_url': {exc}")
    try:
        page = build_site(cfg, store, target)
    except SiteError as exc:
        fail(str(exc), code=1)
    finally:
        store.close()
    out.print(f"{page.overall_text}: {len(page.monitors)} monitor{'s' if len(page.monitors) != 1 else ''}, "
              f"{len(page.incidents)} recent incident{'s' if len(page.incidents) != 1 else ''}; site written to {target}")


@command(status_page_app)
def serve(
    directory: Path = typer.Option(Path("site"), "--dir", metavar="DIR", help="The built site."),
    listen: str = typer.Option("127.0.0.1:8080", "--listen", metavar="HOST:PORT", help="Where to listen."),
) -> None:
    """Serve a built site read-only for a quick look: only index.html, status.json and the badges;
    no directory listing, GET and HEAD only. Rebuilds show up as they happen. For the public, put the
    directory on a real web server or static host instead."""
    from alerting.status_page.serve import make_server, parse_listen
    from alerting.status_page.write import MARKER

    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        fail(f"--listen: {exc}")
    if not (directory / MARKER).exists():
        fail(f"--dir {directory}: no site built there (run: alerting status-page build --out {directory})")
    try:
        server = make_server(directory, host, port)
    except OSError as exc:
        fail(f"--listen {listen}: {exc.strerror or exc}")
    out.print(f"Serving the status page in {directory} at http://{host}:{server.server_address[1]}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
