"""Which file to execute: a fixed script, or one named by SCRIPT_FILENAME inside a directory.

Strategy for directory mode: SCRIPT_FILENAME comes from the web server,
which built it from a client's URL, so it is hostile until proven inside
DIR. We never trust string prefixes alone (the 2011 shim's "../" check let
symlinks walk out): each candidate's real path, every symlink resolved, must
lie inside DIR's real path before we so much as stat it, and the file run
is that real path. Walking the name left to right, the first existing
regular file is the script and the rest is PATH_INFO, as Apache and
fcgiwrap do for DIR/app.cgi/extra/path.

The check and the exec are two steps, and whoever can write to DIR can swap
an entry for a symlink out of it in between (a request body being spooled
keeps that window open as long as the client likes). So the exec does not
walk the checked path again: enter_checked opens the script's folder from
DIR one entry at a time refusing symlinks, changes into it by descriptor,
and the script is exec'd by its last component once that is seen to be no
symlink either.
"""

import os
import stat

from .cgi_env import Script
from .protocol import ProtocolError

__all__ = ["Script", "ScriptError", "ScriptResolver", "enter_checked"]


class ScriptError(ProtocolError):
    """A script name we refuse; ``status`` is the HTTP status, ``detail`` for the log only (no paths to clients)."""


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
        path, index = self._walk(segments, script_filename)
        rest = segments[index + 1 :]
        return Script(path, "/" + "/".join(rest) if rest else "")

    def resolve_path(self, path: str, mount: str) -> Script:
        """The script the URL path below ``mount`` names, as Apache's ScriptAlias finds it.

        For a web server that sends no file name (Apache's mod_proxy_scgi):
        ``path`` (latin-1 str, decoded and normalised by
        protocol.request_path, ``mount`` already cut off) is walked one
        segment at a time inside DIR until a segment names a regular
        executable file: the segments up to it, after ``mount``, are
        SCRIPT_NAME, the rest PATH_INFO (both request strings). The same
        confinement as SCRIPT_FILENAME's; a path naming no script is a 404.
        """
        if "\0" in path:
            raise ScriptError(400, "NUL byte in the path", repr(path))
        segments = [segment for segment in path.split("/") if segment]
        if any(segment in (".", "..") for segment in segments):
            raise ScriptError(400, "dot segment in the path", repr(path))
        names = [os.fsdecode(segment.encode("latin-1")) for segment in segments]
        found, index = self._walk(names, path, not_a_script=404)
        script_part = "/" + "/".join(segments[: index + 1])
        return Script(found, path[len(script_part):], script_name=mount.rstrip("/") + script_part)

    def _walk(self, segments: list[str], name: str | None, not_a_script: int = 403) -> tuple[str, int]:
        """The first regular executable file along ``segments`` below DIR (its real path), and its index."""
        current = self.real_directory
        for index, segment in enumerate(segments):
            # `current` is a real path inside DIR and `segment` one name (no
            # '/', '.' or '..'): the entry is inside DIR, and lstat does not
            # follow it. Only a symlink needs its real path found, and only
            # that is walked from the root: one lstat a segment otherwise.
            candidate = current.rstrip("/") + "/" + segment
            status = _lstat(candidate, name)
            if stat.S_ISLNK(status.st_mode):
                candidate = _real_path(candidate, name)
                if not self._inside(candidate):
                    raise ScriptError(403, "script outside the directory", repr(name))
                # A real path holds no symlink, unless a loop stopped
                # realpath or the entry became one since; stat would follow it.
                status = _lstat(candidate, name)
                if stat.S_ISLNK(status.st_mode):
                    raise ScriptError(403, "cannot use the script", f"{name!r}: symlink loop or changed")
            if stat.S_ISDIR(status.st_mode):
                current = candidate
                continue
            if not stat.S_ISREG(status.st_mode):
                raise ScriptError(403, "not a regular file", repr(name))
            if not status.st_mode & 0o111 or not os.access(candidate, os.X_OK):
                raise ScriptError(403, "script not executable", repr(name))
            return candidate, index
        raise ScriptError(not_a_script, "a directory is not a script", repr(name))

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


def _lstat(path: str, script_filename: str | None) -> os.stat_result:
    """os.lstat, with its failures as ScriptErrors (404 for an entry that is not there)."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        raise ScriptError(404, "no such script", repr(script_filename)) from None
    except OSError as error:  # ELOOP, EACCES, ENAMETOOLONG, ENOTDIR...
        raise ScriptError(403, "cannot use the script", f"{script_filename!r}: {error.strerror}") from None


def _real_path(path: str, script_filename: str | None) -> str:
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


#: Opens a folder for fchdir and openat only: search permission is enough, as for chdir.
FOLDER_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def enter_checked(path: str, root: str) -> str:
    """Change into the folder of ``path``, a real path the resolver checked below ``root``; the name to exec.

    The folder is reached from ``root`` (DIR's real path) by descriptors,
    each entry opened with O_NOFOLLOW, so a folder swapped for a symlink
    since the check is refused, not followed. The script itself is lstat()ed
    last, just before the caller's exec: a symlink there now is refused too.
    What is left is that lstat-to-exec window of a few system calls for the
    script's own entry, and a ``#!`` interpreter opening the script by name
    again (README, "What is not covered here"). Raises ScriptError: 404 for an entry gone, 403 else;
    its detail says why, without the path.
    """
    *folders, name = path[len(root.rstrip("/")) + 1:].split("/")
    try:
        fd = os.open(root, FOLDER_FLAGS)
        try:
            for folder in folders:
                inner = os.open(folder, FOLDER_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = inner
            os.fchdir(fd)
        finally:
            os.close(fd)
        status = os.lstat(name)
    except FileNotFoundError:
        raise ScriptError(404, "no such script", "gone since it was checked") from None
    except OSError as error:  # ELOOP: a folder became a symlink; ENOTDIR, EACCES
        raise ScriptError(403, "cannot use the script",
                          f"changed since it was checked: {error.strerror}") from None
    if not stat.S_ISREG(status.st_mode):
        now = "a symlink" if stat.S_ISLNK(status.st_mode) else "not a regular file"
        raise ScriptError(403, "cannot use the script", f"{now} since it was checked")
    return "./" + name
