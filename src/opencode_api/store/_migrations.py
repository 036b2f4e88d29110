"""Versioned schema migrations shipped as ``sql/<dialect>_<NNN>_<name>.sql`` package files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_NAME = re.compile(r"^(?P<dialect>[a-z]+)_(?P<version>\d{3})_(?P<name>\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The migration split into statements (our files keep ``;`` out of literals)."""
        lines = [ln for ln in self.sql.splitlines() if not ln.lstrip().startswith("--")]
        return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def load_migrations(dialect: str) -> list[Migration]:
    """The dialect's migrations in version order."""
    found: list[Migration] = []
    for entry in (resources.files("opencode_api.store") / "sql").iterdir():
        match = _NAME.match(entry.name)
        if match and match["dialect"] == dialect:
            found.append(
                Migration(int(match["version"]), match["name"], entry.read_text(encoding="utf-8"))
            )
    found.sort(key=lambda m: m.version)
    return found
