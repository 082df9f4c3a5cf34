"""The ``status_page:`` section of the config: which monitors are public, under what names, where
the site goes. Pure values (pydantic); ``alerting.config`` validates it, problems name the field.

    status_page:
      out: site/                  # directory to write (relative to the config file)
      title: Example status
      build_every_cycle: true     # the served monitor rebuilds the site after each cycle
      tags: [public]              # monitors with any of these tags are public ...
      monitors:                   # ... and these (all monitors when neither is given)
        - api
        - {name: db-primary, public_name: Database}
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PublicMonitor(BaseModel):
    """One public monitor: its config name, and the name the page shows (its name by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    public_name: str | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("public_name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and (_CONTROL.search(value) or value != value.strip()):
            raise ValueError("a public name is one line without leading or trailing spaces")
        return value


class StatusPageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    out: str = Field(min_length=1, max_length=4096, description="directory of the site, relative to the config file")
    title: str = Field(default="Service status", min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500, description="a line under the title")
    build_every_cycle: bool = Field(default=True, description="rebuild in each flow run of the served monitor")
    tags: list[str] = Field(default_factory=list, description="monitors with any of these tags are public")
    monitors: list[PublicMonitor] = Field(default_factory=list, description="public monitors, by name")
    incidents: int = Field(default=20, ge=0, le=500, description="how many recent incidents the page lists")

    @field_validator("monitors", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, list):  # "- api" is short for "- {name: api}"
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("title", "description")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and _CONTROL.search(value):
            raise ValueError("one line of text, without control characters")
        return value

    def chosen(self, names: list[str], tags: dict[str, list[str]]) -> list[tuple[str, str]]:
        """(config name, public name) of the public monitors, in config order; every monitor when the
        section names neither monitors nor tags."""
        listed = {m.name: m.public_name or m.name for m in self.monitors}
        wanted = set(self.tags)
        everyone = not self.monitors and not self.tags
        return [(n, listed.get(n, n)) for n in names
                if everyone or n in listed or wanted.intersection(tags.get(n, ()))]
