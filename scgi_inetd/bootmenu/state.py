"""The state database: one-shot marks and the inventory of machines seen.

SQLite in WAL mode, one transaction per change. A menu request first reads
the machine's mark (a read never waits for writers in WAL mode); only when a
one-shot mark is there does it take the write lock (BEGIN IMMEDIATE), read
the mark again and delete it, so of machines racing for a mark exactly one
gets it: never lost, never doubled. The inventory row is written after the
menu is sent (app.py), so the booting machine does not wait for that commit.

The C module `_sqlite3` is imported directly: `sqlite3` adds `datetime` and
adapters we do not use, about 1.3 ms more per request. The request path never
creates the database (`init`, `next` and `hosts` do): a missing file means a
wrong path or an unmounted disk, and serving menus without the marks would be
wrong, so the app answers 503 instead.
"""

from __future__ import annotations

import time
TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds of import per request
    from typing import Any

from .identity import Identity

SCHEMA = """
CREATE TABLE IF NOT EXISTS marks (
    mac TEXT PRIMARY KEY,
    entry TEXT NOT NULL,
    until_done INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hosts (
    mac TEXT PRIMARY KEY,
    uuid TEXT, ip TEXT, hostname TEXT, serial TEXT, buildarch TEXT,
    platform TEXT, manufacturer TEXT, product TEXT,
    entry TEXT, seen INTEGER NOT NULL, via TEXT NOT NULL
);
"""

HOST_COLUMNS = ("mac", "uuid", "ip", "hostname", "serial", "buildarch", "platform",
                "manufacturer", "product", "entry", "seen", "via")


class StateError(Exception):
    """The state database cannot be used (missing, locked, corrupt): 503."""


def _uri(path: str) -> str:
    return "file:" + path.replace("%", "%25").replace("?", "%3f").replace("#", "%23") + "?mode=rw"


class State:
    """An open state database; every method is one transaction."""

    def __init__(self, path: str, timeout: float = 5.0, *, create: bool = False) -> None:
        import _sqlite3

        self._error = _sqlite3.Error
        try:
            if create:
                self._db = _sqlite3.connect(path, timeout=timeout, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.executescript(SCHEMA)
            else:
                self._db = _sqlite3.connect(_uri(path), timeout=timeout, isolation_level=None, uri=True)
            self._db.execute("PRAGMA synchronous=NORMAL")
        except _sqlite3.Error as exc:
            raise StateError(f"state database {path}: {exc}") from None
        self.path = path

    def close(self) -> None:
        self._db.close()

    def _run(self, work) -> Any:
        """Run `work(db)` in one write transaction; StateError on any failure."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result
        except self._error as exc:
            raise StateError(f"state database {self.path}: {exc}") from None

    def set_mark(self, mac: str, entry: str, until_done: bool) -> None:
        """Make `mac`'s next menu boot `entry` (replacing any earlier mark)."""
        self._run(lambda db: db.execute(
            "INSERT OR REPLACE INTO marks (mac, entry, until_done, created) VALUES (?, ?, ?, ?)",
            (mac, entry, int(until_done), int(time.time()))))

    def done(self, mac: str) -> str | None:
        """Clear `mac`'s mark (the installer finished); the entry it had, if any."""
        def work(db):
            row = db.execute("SELECT entry FROM marks WHERE mac = ?", (mac,)).fetchone()
            db.execute("DELETE FROM marks WHERE mac = ?", (mac,))
            return row[0] if row else None
        return self._run(work)

    def peek(self, mac: str) -> tuple[str, bool] | None:
        """`mac`'s pending mark as (entry, until_done), without consuming it."""
        rows = self._read("SELECT entry, until_done FROM marks WHERE mac = ?", (mac,))
        return (rows[0][0], bool(rows[0][1])) if rows else None

    def take_mark(self, mac: str, known: dict) -> str | None:
        """The entry `mac` must boot now, if marked; a one-shot mark is consumed.

        The common case (no mark) is one read, which in WAL mode never waits
        for writers. A one-shot mark is deleted in a write transaction that
        reads it again first, so of several requests racing for it exactly one
        gets it. A mark naming an entry the config no longer has is left alone.
        """
        row = self._read("SELECT entry, until_done FROM marks WHERE mac = ?", (mac,))
        if not row or row[0][0] not in known:
            return None
        if row[0][1]:
            return row[0][0]

        def work(db):
            again = db.execute("SELECT entry, until_done FROM marks WHERE mac = ?", (mac,)).fetchone()
            if again is None or again[0] not in known:
                return None
            if not again[1]:
                db.execute("DELETE FROM marks WHERE mac = ?", (mac,))
            return again[0]
        return self._run(work)

    def record(self, identity: Identity, entry: str, via: str) -> None:
        """Note in the inventory that this machine fetched a menu booting `entry`.

        Values the request did not carry keep their earlier ones (PXELINUX
        sends no buildarch; iPXE sends no cookie).
        """
        values = [identity.get(column) for column in HOST_COLUMNS[:9]] + [entry, int(time.time()), via]
        self._run(lambda db: db.execute(
            "INSERT INTO hosts (" + ", ".join(HOST_COLUMNS) + ") VALUES (" + ", ".join("?" * 12) + ")"
            " ON CONFLICT (mac) DO UPDATE SET "
            + ", ".join(f"{c} = coalesce(excluded.{c}, {c})" for c in HOST_COLUMNS[1:9])
            + ", entry = excluded.entry, seen = excluded.seen, via = excluded.via",
            values))

    def _read(self, sql: str, parameters: tuple) -> list:
        try:
            return self._db.execute(sql, parameters).fetchall()
        except self._error as exc:
            raise StateError(f"state database {self.path}: {exc}") from None

    def hosts(self) -> list[dict[str, Any]]:
        """Every machine seen, most recent first."""
        try:
            rows = self._db.execute(
                "SELECT " + ", ".join(HOST_COLUMNS) + " FROM hosts ORDER BY seen DESC, mac").fetchall()
            marks = dict(self._db.execute("SELECT mac, entry || CASE until_done WHEN 1 THEN ' (until done)' ELSE '' END FROM marks").fetchall())
        except self._error as exc:
            raise StateError(f"state database {self.path}: {exc}") from None
        out = []
        for row in rows:
            host = dict(zip(HOST_COLUMNS, row))
            host["mark"] = marks.pop(host["mac"], None)
            out.append(host)
        for mac, mark in sorted(marks.items()):
            out.append({"mac": mac, "mark": mark, "seen": None})
        return out
