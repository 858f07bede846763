"""The CGI/1.1 environment (RFC 3875 section 4) a script is exec'd with.

Strategy: start from nothing. The shim's own environment (whatever inetd,
systemd or a shell left in it) never reaches the script; only PATH, the
operator's ``--env`` / ``--pass-env`` variables, the SCGI request variables
and the variables we compute go in. The request cannot override what the
operator set, nor the script variables, which must describe the script that
is actually run.

Values are PEP 3333 "bytes as str": the request's are latin-1 decoded by
the protocol layer, and paths and the operator's variables are brought to
the same form here, so that ``exec_environ`` hands execve the exact bytes
the web server sent.
"""

import os

#: PATH when the operator gives none: the shim's own PATH is not inherited,
#: so a script sees the same PATH under inetd, systemd and a shell.
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
SERVER_SOFTWARE = "scgi-inetd"

#: Request variables that never reach the script: SCGI is the protocol's
#: own marker; HTTP_PROXY is any client's "Proxy:" header, which CGI
#: programs may take for their proxy setting (httpoxy, CVE-2016-5385);
#: HTTP_TRANSFER_ENCODING describes a framing the web server has already
#: undone (nginx de-chunks the body, sends its real CONTENT_LENGTH, and
#: still passes "chunked" on: a script that believes it de-chunks twice).
DROPPED = frozenset({"SCGI", "HTTP_PROXY", "HTTP_TRANSFER_ENCODING"})

#: Variables computed from the script that runs (RFC 3875 4.1.5, 4.1.6, 4.1.13).
SCRIPT_VARIABLES = ("SCRIPT_NAME", "PATH_INFO", "PATH_TRANSLATED", "SCRIPT_FILENAME")


class Script:
    """The file to execute and the PATH_INFO left over from SCRIPT_FILENAME."""

    __slots__ = ("path", "path_info")

    def __init__(self, path: str, path_info: str = "") -> None:
        self.path = path
        self.path_info = path_info

    def __repr__(self) -> str:
        return f"Script({self.path!r}, {self.path_info!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Script)
            and (self.path, self.path_info) == (other.path, other.path_info)
        )


def operator_environ(
    env: dict[str, str] | None = None,
    pass_env: tuple[str, ...] = (),
    inherited: "os._Environ[str] | dict[str, str] | None" = None,
) -> dict[str, str]:
    """PATH plus ``--pass-env`` names (from the shim's environment) plus ``--env`` pairs."""
    inherited = os.environ if inherited is None else inherited
    base = {"PATH": DEFAULT_PATH}
    for name in pass_env:
        if name in inherited:
            base[name] = inherited[name]
    base.update(env or {})
    return {_latin1(name): _latin1(value) for name, value in base.items()}


def build_environ(
    request: dict[str, str], script: Script, operator: dict[str, str]
) -> dict[str, str]:
    """Merge the request's variables, the operator's and the script's into one environment."""
    environ = {
        name: value
        for name, value in request.items()
        if name not in DROPPED and name not in SCRIPT_VARIABLES and _valid_name(name)
    }
    environ["GATEWAY_INTERFACE"] = "CGI/1.1"
    environ.setdefault("SERVER_SOFTWARE", SERVER_SOFTWARE)
    environ.update(script_variables(request, script))
    environ.update(operator)
    return environ


def script_variables(request: dict[str, str], script: Script) -> dict[str, str]:
    """SCRIPT_NAME, PATH_INFO, PATH_TRANSLATED and SCRIPT_FILENAME for the script run.

    When the resolver split a SCRIPT_FILENAME that went past the script
    (DIR/app.cgi/extra), the remainder is PATH_INFO and is cut off the end of
    SCRIPT_NAME (or DOCUMENT_URI when the web server sent no SCRIPT_NAME), as
    Apache and fcgiwrap do. Otherwise the web server's PATH_INFO stands.
    """
    split_info = _latin1(script.path_info)
    path_info = split_info or request.get("PATH_INFO", "")
    script_name = request.get("SCRIPT_NAME")
    if script_name is None:
        script_name = request.get("DOCUMENT_URI", "")
        if path_info and not split_info and script_name.endswith(path_info):
            script_name = script_name[: -len(path_info)]
    if split_info and script_name.endswith(split_info):
        script_name = script_name[: -len(split_info)]
    variables = {
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "SCRIPT_FILENAME": _latin1(script.path),
    }
    # RFC 3875 4.1.6: PATH_INFO mapped onto the document root; unset without PATH_INFO.
    document_root = request.get("DOCUMENT_ROOT")
    if path_info and document_root:
        variables["PATH_TRANSLATED"] = document_root.rstrip("/") + path_info
    return variables


def exec_environ(environ: dict[str, str]) -> dict[bytes, bytes]:
    """The environment as the bytes execve needs, each value exactly as received."""
    return {name.encode("latin-1"): value.encode("latin-1") for name, value in environ.items()}


def _latin1(text: str) -> str:
    """A file-system str (os.fsdecode) as a bytes-as-str latin-1 value."""
    return os.fsencode(text).decode("latin-1")


def _valid_name(name: str) -> bool:
    """execve cannot carry an empty name or one containing '='."""
    return bool(name) and "=" not in name
