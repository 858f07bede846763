"""File names without os.path, for the one-shot paths of both front-ends.

An interpreter started without site (README, "Speed") has not imported
os, and `import os` (with posixpath, stat and _collections_abc) would cost
it 5 M instructions, a fifth of a one-shot request; the built-in posix
module has the system calls. os is imported only for a name that is not
absolute and normal already.
"""

import posix

__all__ = ["S_IFDIR", "S_IFMT", "S_IFREG", "absolute", "file_type"]

#: File types in st_mode (stat.h): the stat module would be one more import per request.
S_IFMT, S_IFDIR, S_IFREG = 0o170000, 0o040000, 0o100000


def absolute(path: str) -> str:
    """os.path.abspath(path), without importing os for a path that is absolute and normal already."""
    if path.startswith("/") and "//" not in path and "/./" not in path and "/../" not in path \
            and not path.endswith(("/", "/.", "/..")):
        return path
    import os.path

    return os.path.abspath(path)


def file_type(path: str) -> int:
    """The S_IF* type of what ``path`` names, following symlinks as os.path.isdir does; 0 when it cannot be seen."""
    try:
        return posix.stat(path).st_mode & S_IFMT
    except (OSError, ValueError):
        return 0
