"""The validated config for a request: from the marshal cache, or by parsing.

Parsing TOML costs about 14 ms of `tomllib` import alone, three times a menu
request's whole budget, while reading the cache costs about 0.1 ms for a
small config. The cache holds the exact bytes of the file it was made from
and is used only when they still match, so an edited file is never served
stale; `scgi-bootmenu CONFIG check` refreshes it, and so does the first
request after an edit when the cache's directory is writable.
"""

from __future__ import annotations

import os

from .errors import ConfigError

__all__ = ["CACHE_VERSION", "ConfigError", "LazyRules", "load", "write_cache"]

CACHE_VERSION = 3
"""Bump when the shape of the validated data changes: older caches are ignored."""


def load(path: str, cache: str | None = None) -> dict:
    """The validated config in `path`, through the `cache` file when fresh.

    A stale or missing cache is rewritten (atomically) when the directory
    allows; a cache not owned by this user or root, or writable by others,
    is ignored.
    """
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror}"]) from None
    if cache:
        config = _read_cache(cache, raw)
        if config is not None:
            return config
    from .config import parse

    config = parse(raw)
    if cache:
        write_cache(cache, raw, config)
    return config


class LazyRules:
    """The host rules of a cached config, each unmarshalled on first use.

    A request looks at the few rules its index look-ups name (and the ones
    that must be scanned), so with 1,000 host rules most are never decoded:
    this keeps a cache load near 0.2 ms instead of about 1 ms.
    """

    __slots__ = ("_blobs", "_rules")

    def __init__(self, blobs: list[bytes]) -> None:
        self._blobs = blobs
        self._rules: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self._blobs)

    def __getitem__(self, index: int) -> dict:
        rule = self._rules.get(index)
        if rule is None:
            import marshal

            rule = self._rules[index] = marshal.loads(self._blobs[index])
        return rule

    def __iter__(self):
        return (self[index] for index in range(len(self._blobs)))


def _read_cache(cache: str, raw: bytes) -> dict | None:
    import marshal

    try:
        with open(cache, "rb") as file:
            info = os.fstat(file.fileno())
            if info.st_uid not in (0, os.geteuid()) or info.st_mode & 0o022:
                return None
            # one read, then loads: marshal.load on a file reads piece by piece (4x slower)
            version, cached_raw, config = marshal.loads(file.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if version != CACHE_VERSION or cached_raw != raw:
        return None
    config["rules"] = LazyRules(config["rules"])
    return config


def write_cache(cache: str, raw: bytes, config: dict) -> None:
    """Store ``config`` (parsed from ``raw``) for load(): atomically, silently skipped on error."""
    import marshal

    temporary = f"{cache}.{os.getpid()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        compact = dict(config, rules=[marshal.dumps(rule) for rule in config["rules"]])
        with open(fd, "wb") as file:
            marshal.dump((CACHE_VERSION, raw, compact), file)
        os.replace(temporary, cache)
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
