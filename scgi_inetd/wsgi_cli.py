"""bin/scgi-wsgi: serve a WSGI app named on the command line, the line that goes in inetd.conf.

    scgi-wsgi [options] TARGET [options]

TARGET is ``package.module:callable`` or ``path/to/file.py:callable``; the
callable defaults to ``application``, then ``app``.  The log is opened
before the app is imported, so what the import prints lands in the log, not
in the response.  An app that fails to import still gets its request
answered (500) in one-shot mode, so nginx does not wait for a timeout.
"""

import posix
import sys

from .options import WSGI, ServeOptions, UsageError, parse_options
from .paths import S_IFREG, absolute, file_type

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds per request; annotations only
    from typing import Any, Sequence

__all__ = ["DEFAULT_CALLABLES", "load_app", "main", "parse_args"]

DEFAULT_CALLABLES = ("application", "app")


def parse_args(argv: "Sequence[str]") -> tuple[ServeOptions, str]:
    """The options (from the table in options.py) and TARGET, which may come first (inetd.conf style) or last."""
    options, positionals = parse_options(WSGI, argv, intermixed=True)
    if not positionals:
        raise UsageError("missing TARGET")
    if len(positionals) > 1:
        raise UsageError(f"unexpected argument {positionals[1]!r}")
    return options, positionals[0]


def load_app(target: str) -> "Any":
    """Import TARGET and return its WSGI callable; raises ImportError or AttributeError."""
    source, colon, name = target.rpartition(":")
    if not colon or "/" in name or name.endswith(".py"):
        source, name = target, ""
    if source.endswith(".py") or "/" in source:
        module = _load_file(source)
    else:
        __import__(source)
        module = sys.modules[source]
    for candidate in ((name,) if name else DEFAULT_CALLABLES):
        found: "Any" = module
        try:
            for part in candidate.split("."):
                found = getattr(found, part)
        except AttributeError:
            continue
        if callable(found):
            return found
        raise TypeError(f"{target}: {candidate} is not callable")
    wanted = name or " or ".join(DEFAULT_CALLABLES)
    raise AttributeError(f"{target}: module {module.__name__!r} has no {wanted}")


def _load_file(path: str) -> "Any":
    """Import a .py file as a module named after it, with its directory first on sys.path.

    A plain import keeps the cached .pyc, as it should: compiling the app's
    source on every request would cost more than the gateway.  A name already
    taken (a file called json.py, say) is loaded under another name instead.
    """
    path = absolute(path)
    if file_type(path) != S_IFREG:
        raise ImportError(f"no such file: {path}")
    directory, _, filename = path.rpartition("/")
    directory = directory or "/"
    name = filename[:-3] if filename.endswith(".py") else filename
    sys.path.insert(0, directory)
    if name.isidentifier() and name not in sys.modules and filename.endswith(".py"):
        __import__(name)
        module = sys.modules[name]
        found = getattr(module, "__file__", "") or ""
        if found and absolute(found) == path:
            return module
        del sys.modules[name]  # another module of that name came first on sys.path
    return _load_file_as(path, "_scgi_wsgi_app")


def _load_file_as(path: str, name: str) -> "Any":
    from importlib.machinery import SourceFileLoader

    loader = SourceFileLoader(name, path)
    module = type(sys)(name)
    module.__file__ = path
    module.__loader__ = loader
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def main(argv: "Sequence[str] | None" = None) -> int:
    """Run scgi-wsgi; returns the exit status (2 for a bad command line)."""
    try:
        options, target = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as stop:
        return stop.report(WSGI, sys.stdout, sys.stderr)
    from .wsgi import handle_connection, listen_and_log, serve_app

    started = listen_and_log(options, WSGI)
    if isinstance(started, int):
        return started
    listen_fd, errors = started
    try:
        if options.chdir:
            posix.chdir(options.chdir)
            sys.path.insert(0, posix.getcwd())
        elif "/" not in target.rpartition(":")[0] and not target.endswith(".py"):
            sys.path.insert(0, posix.getcwd())
        app = load_app(target)
    except Exception:
        import traceback

        from .logsink import format_line

        trace = traceback.format_exc().rstrip("\n")
        errors.write(format_line(f"cannot load {target}:\n{trace}"))
        if not _resident(listen_fd):
            handle_connection(_failed_app, errors, script_name=options.script_name,
                              max_header=options.max_header, header_timeout=options.header_timeout)
        errors.flush()
        return 1
    return serve_app(app, errors, stdin=listen_fd, script_name=options.script_name, options=options)


def _resident(listen_fd: int) -> bool:
    """Serving a listener bound by --listen (not fd 0), or one a super-server passed."""
    if listen_fd != 0:
        return True
    from .listener import listener_from_environment

    return listener_from_environment(0) is not None


def _failed_app(environ: dict, start_response: "Any") -> list[bytes]:
    """Answers every request while the real app cannot be imported (the log has why)."""
    start_response("500 Internal Server Error", [("Content-Type", "text/plain; charset=utf-8")])
    return [b"500 Internal Server Error: the application could not be loaded\n"]
