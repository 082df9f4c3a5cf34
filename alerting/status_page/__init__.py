"""The public status page: a static site (index.html, status.json, badges/<monitor>.svg) built from
the state store, for people who depend on the services and are not in the team's chat.

    spec.py     the ``status_page:`` config section (what is public, titles, output directory)
    data.py     the page's values from the store and the config (pure reads; public-safe text only)
    render.py   index.html (Jinja2, autoescaped) and status.json
    badges.py   one SVG badge per monitor
    write.py    the atomic write: a new directory swapped in whole, never half a site
    build.py    the one call: config + store -> site on disk (also after each served cycle)
    serve.py    a read-only HTTP server of the generated files (no listing, nothing else)

Empty on purpose: ``alerting.config`` imports ``spec`` and must not import the rest.
"""
