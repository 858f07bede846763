"""The state: one-shot marks and the inventory of machines seen.

The truth lives in one SQLite database (WAL mode, one transaction per
change). Two small files beside it keep SQLite off the path of an ordinary
menu request, because loading it costs more than the whole request budget
(`_sqlite3` pulls in `functools` and `collections`: about 5 ms, plus about
1 ms to open a WAL database):

* `STATE.marks/<mac>`: a flag per machine that may have a mark. It is
  created and removed only inside the SQLite transaction that adds or
  deletes the mark, while that transaction holds the write lock, so a flag
  is never missing for a committed mark (it may linger after a failed
  commit, which costs one needless look). A request for a machine without a
  flag knows it has no mark after one `stat`.
* `STATE.seen`: the inventory's queue. Each menu request appends one line
  (under a shared `flock`); `hosts` (and a request finding the file over
  FOLD_AT bytes) folds the lines into the `hosts` table in one transaction
  under an exclusive `flock`, then empties the file.

Consuming a mark: the request reads it, and for a one-shot mark takes the
write lock (BEGIN IMMEDIATE), reads it again and deletes it, so of machines
racing for a mark exactly one gets it: never lost, never doubled.

The C module `_sqlite3` is imported directly (`sqlite3` adds `datetime`).
The request path never creates the database (`init`, `next`, `hosts` do): a
missing file means a wrong path or an unmounted disk, and menus served
without their marks would be wrong, so the app answers 503 instead.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds of import per request
    from typing import Any

from ..protocol import RequestError
from .identity import Identity

__all__ = ["FOLD_AT", "HOST_COLUMNS", "SCHEMA", "State", "StateError", "append_seen", "flag_path",
           "may_have_mark", "require"]

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

FOLD_AT = 1 << 20
"""Fold the seen-log into the database once it is this big (about 7,000 boots)."""


class StateError(RequestError):
    """The state cannot be used (missing, locked, corrupt): 503.

    Raised with what went wrong (a path, SQLite's message): that is the
    detail, for the log and the command line's stderr; a client is only
    told that the state is unavailable.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(503, "state database unavailable; see the log", detail)


def flag_path(state: str, mac: str) -> str:
    return f"{state}.marks/{mac.replace(':', '-')}"


def may_have_mark(state: str, mac: str) -> bool:
    """False when `mac` certainly has no mark (one `stat`, no SQLite)."""
    return os.path.exists(flag_path(state, mac))


def require(state: str) -> None:
    """StateError unless the database file exists."""
    if not os.path.exists(state):
        raise StateError(f"state database {state}: missing (create it with `scgi-bootmenu CONFIG init`)")


def append_seen(state: str, identity: Identity, entry: str, via: str) -> int:
    """Queue an inventory line for this machine; the log's size afterwards.

    Every value was validated (no tabs, no newlines), and one write() to a
    file opened O_APPEND lands whole, under a shared lock so that folding
    (exclusive lock) never loses a line.
    """
    import fcntl

    values = [identity.get(column) or "" for column in HOST_COLUMNS[:9]]
    line = "\t".join(values + [entry, str(int(time.time())), via]) + "\n"
    fd = os.open(state + ".seen", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        os.write(fd, line.encode("utf-8"))
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _uri(path: str) -> str:
    return "file:" + path.replace("%", "%25").replace("?", "%3f").replace("#", "%23") + "?mode=rw"


def _set_flag(state: str, mac: str) -> None:
    os.makedirs(state + ".marks", exist_ok=True)
    os.close(os.open(flag_path(state, mac), os.O_WRONLY | os.O_CREAT, 0o644))


def _clear_flag(state: str, mac: str) -> None:
    try:
        os.unlink(flag_path(state, mac))
    except FileNotFoundError:
        pass


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

    def _run(self, work, flag: str | None = None) -> Any:
        """Run `work(db)` in one write transaction; StateError on any failure.

        `flag`: the MAC whose flag `work` may remove; it is put back when
        the transaction fails, so a mark that stays never loses its flag.
        """
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if flag is not None:
                    _set_flag(self.path, flag)
                raise
            return result
        except (self._error, OSError) as exc:
            raise StateError(f"state database {self.path}: {exc}") from None

    def _read(self, sql: str, parameters: tuple = ()) -> list:
        try:
            return self._db.execute(sql, parameters).fetchall()
        except self._error as exc:
            raise StateError(f"state database {self.path}: {exc}") from None

    def set_mark(self, mac: str, entry: str, until_done: bool) -> None:
        """Make `mac`'s next menu boot `entry` (replacing any earlier mark)."""
        def work(db):
            db.execute("INSERT OR REPLACE INTO marks (mac, entry, until_done, created) VALUES (?, ?, ?, ?)",
                       (mac, entry, int(until_done), int(time.time())))
            _set_flag(self.path, mac)
        self._run(work)

    def done(self, mac: str) -> str | None:
        """Clear `mac`'s mark (the installer finished); the entry it had, if any."""
        def work(db):
            row = db.execute("SELECT entry FROM marks WHERE mac = ?", (mac,)).fetchone()
            db.execute("DELETE FROM marks WHERE mac = ?", (mac,))
            _clear_flag(self.path, mac)
            return row[0] if row else None
        return self._run(work, flag=mac)

    def peek(self, mac: str) -> tuple[str, bool] | None:
        """`mac`'s pending mark as (entry, until_done), without consuming it."""
        rows = self._read("SELECT entry, until_done FROM marks WHERE mac = ?", (mac,))
        return (rows[0][0], bool(rows[0][1])) if rows else None

    def take_mark(self, mac: str, known: dict) -> str | None:
        """The entry `mac` must boot now, if marked; a one-shot mark is consumed.

        A one-shot mark is deleted in a write transaction that reads it again
        first, so of several requests racing for it exactly one gets it. A
        mark naming an entry the config no longer has is left alone.
        """
        rows = self._read("SELECT entry, until_done FROM marks WHERE mac = ?", (mac,))
        if rows and rows[0][1] and rows[0][0] in known:
            return rows[0][0]
        if rows and rows[0][0] not in known:
            return None

        def work(db):
            again = db.execute("SELECT entry, until_done FROM marks WHERE mac = ?", (mac,)).fetchone()
            if again is None:
                _clear_flag(self.path, mac)  # stale: another request took the mark
                return None
            if again[0] not in known:
                return None
            if not again[1]:
                db.execute("DELETE FROM marks WHERE mac = ?", (mac,))
                _clear_flag(self.path, mac)
            return again[0]
        return self._run(work, flag=mac)

    def fold_seen(self) -> int:
        """Move the queued inventory lines into the hosts table; how many.

        Values a line lacks keep their earlier ones (PXELINUX sends no
        buildarch; iPXE sends no cookie).
        """
        import fcntl

        try:
            fd = os.open(self.path + ".seen", os.O_RDWR)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise StateError(f"state database {self.path}: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with open(fd, "rb", closefd=False) as file:
                lines = file.read().decode("utf-8", "replace").splitlines()
            rows = []
            for line in lines:
                values = line.split("\t")
                if len(values) == len(HOST_COLUMNS) and values[0] and values[10].isdigit():
                    row: list[Any] = [value if value != "" else None for value in values]
                    row[10] = int(values[10])
                    rows.append(row)
            if rows:
                self._run(lambda db: db.executemany(
                    "INSERT INTO hosts (" + ", ".join(HOST_COLUMNS) + ") VALUES (" + ", ".join("?" * 12) + ")"
                    " ON CONFLICT (mac) DO UPDATE SET "
                    + ", ".join(f"{c} = coalesce(excluded.{c}, {c})" for c in HOST_COLUMNS[1:9])
                    + ", entry = excluded.entry, seen = excluded.seen, via = excluded.via"
                    " WHERE excluded.seen >= hosts.seen",
                    rows))
            os.ftruncate(fd, 0)
            return len(rows)
        finally:
            os.close(fd)

    def record(self, identity: Identity, entry: str, via: str) -> None:
        """Queue and fold one inventory line at once (the command line's way)."""
        append_seen(self.path, identity, entry, via)
        self.fold_seen()

    def sync_flags(self) -> None:
        """Create any missing mark flag (after a crash between commit and flag)."""
        for (mac,) in self._read("SELECT mac FROM marks"):
            if not may_have_mark(self.path, mac):
                _set_flag(self.path, mac)

    def hosts(self, mac: str | None = None) -> list[dict[str, Any]]:
        """Every machine seen (or only `mac`), most recent first, with its pending mark.

        Each host has the HOST_COLUMNS (None where unknown) and its mark:
        `mark` ("entry" or "entry (until done)", for people), `mark_entry`,
        `until_done` and `marked` (when it was set), all None without one.
        Marked machines never seen come last. The CLI, the admin page and
        the API all list through here, so they always agree.
        """
        self.fold_seen()
        where, parameters = (" WHERE mac = ?", (mac,)) if mac else ("", ())
        rows = self._read("SELECT " + ", ".join(HOST_COLUMNS) + " FROM hosts" + where + " ORDER BY seen DESC, mac",
                          parameters)
        marks = {row[0]: row[1:] for row in self._read(
            "SELECT mac, entry, until_done, created FROM marks" + where, parameters)}
        out = []
        for row in rows:
            out.append(_with_mark(dict(zip(HOST_COLUMNS, row)), marks.pop(row[0], None)))
        for mac, mark in sorted(marks.items()):
            out.append(_with_mark(dict.fromkeys(HOST_COLUMNS, None) | {"mac": mac}, mark))
        return out

    def host(self, mac: str) -> dict[str, Any] | None:
        """One machine as `hosts()` lists it; None if never seen and not marked."""
        found = self.hosts(mac)
        return found[0] if found else None


def _with_mark(host: dict[str, Any], mark: tuple | None) -> dict[str, Any]:
    entry, until_done, created = mark or (None, None, None)
    host["mark_entry"] = entry
    host["until_done"] = None if mark is None else bool(until_done)
    host["marked"] = created
    host["mark"] = None if mark is None else entry + (" (until done)" if until_done else "")
    return host
