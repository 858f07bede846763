"""Which file to execute: a fixed script, or one named by SCRIPT_FILENAME inside a directory.

Strategy for directory mode: SCRIPT_FILENAME comes from the web server,
which built it from a client's URL, so it is hostile until proven inside
DIR. We never trust string prefixes alone (the 2011 shim's "../" check let
symlinks walk out): each candidate's real path, every symlink resolved, must
lie inside DIR's real path before we so much as stat it, and the file run
is that real path. Walking the name left to right, the first existing
regular file is the script and the rest is PATH_INFO, as Apache and
fcgiwrap do for DIR/app.cgi/extra/path.
"""

import os
import stat

from .cgi_env import Script

__all__ = ["Script", "ScriptError", "ScriptResolver"]


class ScriptError(Exception):
    """A SCRIPT_FILENAME we refuse; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail  # for the log only: the client learns no paths


class ScriptResolver:
    """Resolves SCRIPT_FILENAME inside one directory (``scgi-run DIR/``)."""

    def __init__(self, directory: str) -> None:
        self.directory = os.path.normpath(os.path.abspath(directory))
        self.real_directory = os.path.realpath(self.directory)

    def resolve(self, script_filename: str | None) -> Script:
        """The script named by SCRIPT_FILENAME, or ScriptError (400, 403 or 404).

        ``script_filename`` is the request's latin-1 "bytes as str" value; it is
        turned back into the file-system name those bytes spell.
        """
        if script_filename:
            script_filename = os.fsdecode(script_filename.encode("latin-1"))
        segments = self._segments(script_filename)
        current = self.real_directory
        for index, segment in enumerate(segments):
            candidate = _real_path(os.path.join(current, segment), script_filename)
            if not self._inside(candidate):
                raise ScriptError(403, "script outside the directory", repr(script_filename))
            try:
                # lstat: a real path holds no symlink, unless a loop stopped
                # realpath or the entry became one since; stat would follow it.
                status = os.lstat(candidate)
            except FileNotFoundError:
                raise ScriptError(404, "no such script", repr(script_filename)) from None
            except OSError as error:  # ELOOP, EACCES, ENAMETOOLONG, ENOTDIR...
                raise ScriptError(403, "cannot use the script", f"{script_filename!r}: {error.strerror}") from None
            if stat.S_ISLNK(status.st_mode):
                raise ScriptError(403, "cannot use the script", f"{script_filename!r}: symlink loop or changed")
            if stat.S_ISDIR(status.st_mode):
                current = candidate
                continue
            if not stat.S_ISREG(status.st_mode):
                raise ScriptError(403, "not a regular file", repr(script_filename))
            if not status.st_mode & 0o111 or not os.access(candidate, os.X_OK):
                raise ScriptError(403, "script not executable", repr(script_filename))
            rest = segments[index + 1 :]
            return Script(candidate, "/" + "/".join(rest) if rest else "")
        raise ScriptError(403, "a directory is not a script", repr(script_filename))

    def _segments(self, script_filename: str | None) -> list[str]:
        """SCRIPT_FILENAME as path segments below DIR; refuses malformed names."""
        if not script_filename:
            raise ScriptError(400, "empty or missing SCRIPT_FILENAME")
        if "\0" in script_filename:
            raise ScriptError(400, "NUL byte in SCRIPT_FILENAME", repr(script_filename))
        relative = None
        for prefix in (self.directory, self.real_directory):
            # The '/' after DIR keeps DIR-evil/ from matching DIR.
            if script_filename.startswith(prefix.rstrip("/") + "/"):
                relative = script_filename[len(prefix.rstrip("/")) + 1 :]
                break
        if relative is None:
            raise ScriptError(403, "script outside the directory", repr(script_filename))
        segments = [s for s in relative.split("/") if s and s != "."]
        if ".." in segments:
            raise ScriptError(400, "'..' in SCRIPT_FILENAME", repr(script_filename))
        return segments

    def _inside(self, real_path: str) -> bool:
        root = self.real_directory.rstrip("/") + "/"
        return real_path.startswith(root)


def _real_path(path: str, script_filename: str) -> str:
    """os.path.realpath, with its failures as ScriptErrors.

    realpath lstat()s each entry and then readlink()s the symlinks: an entry
    replaced in between (a deploy's ``rm link; ln -s ...``, or a link swapped
    for a file) makes readlink fail with ENOENT or EINVAL. That is a request
    racing a change of DIR, not a fault of the server: the request gets an
    answer and the resident loop serves on.
    """
    try:
        return os.path.realpath(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ScriptError(404, "no such script", repr(script_filename)) from None
    except OSError as error:
        raise ScriptError(500, "the script changed while it was looked up",
                          f"{script_filename!r}: {error.strerror}") from None
