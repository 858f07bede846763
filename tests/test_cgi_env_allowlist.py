"""No request variable outside the allow-list reaches a CGI script, in any of the four modes.

Each hostile name below is sent (as any client of the socket can send it)
with a value of its own; the script is a bash script (BASH_ENV and exported
functions would run code there) that hands over to a Python dump of its
environment. Each name is proven not to carry the request's value into the
script, in one-shot exec, one-shot --fix-status, resident spawn and resident
--fix-status; and the dropped names get one log line per request.
"""

from __future__ import annotations

import pytest

from scgi_inetd.cgi_env import Script, build_environ
from scgi_inetd.cgi_exec import CgiConfig
from scgi_inetd.protocol import parse_response

from .cgi_support import PYTHON, log_lines, request, run_raw, write_script

#: Names that run code, redirect the loader or a library, or make claims only the
#: web server may make, if a client could put them in a script's environment.
HOSTILE_NAMES = [
    "LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH", "LD_DEBUG", "LD_DEBUG_OUTPUT", "LD_PROFILE",
    "GLIBC_TUNABLES", "GCONV_PATH", "LOCPATH", "NLSPATH", "MALLOC_CHECK_", "MALLOC_PERTURB_",
    "HOSTALIASES", "RES_OPTIONS", "TZ", "LANG", "LC_ALL",
    "BASH_ENV", "ENV", "BASH_FUNC_x%%", "BASH_FUNC_printf%%", "SHELLOPTS", "BASHOPTS", "PS4", "IFS",
    "CDPATH", "HOME", "PATH", "SHELL", "USER", "TMPDIR",
    "PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME",
    "PYTHONINSPECT", "PYTHONWARNINGS", "RUBYOPT", "RUBYLIB", "NODE_OPTIONS", "NODE_PATH",
    "GIT_EXEC_PATH", "GIT_CONFIG_PARAMETERS", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "REMOTE_USER", "AUTH_TYPE", "REMOTE_IDENT", "REDIRECT_REMOTE_USER",
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ld_preload",
    "HTTP_X%%", "HTTP_A-B", "HTTP_A B", "HTTP_A.B", "HTTP_\u00e9", "X=Y",
]

#: What each hostile variable is set to: marker files show whether any of it ran.
def hostile_values(tmp_path) -> dict[str, str]:
    evil = tmp_path / "evil.sh"
    evil.write_text(f"touch {tmp_path}/bash-env.ran\n")
    values = {name: f"hostile-{index}" for index, name in enumerate(HOSTILE_NAMES)}
    values["BASH_ENV"] = values["ENV"] = str(evil)
    values["BASH_FUNC_printf%%"] = f"() {{ touch {tmp_path}/bash-func.ran; }}"
    values["PERL5OPT"] = f"-e'system(\"touch {tmp_path}/perl.ran\")'"
    values["SHELLOPTS"] = "xtrace"
    values["PS4"] = f"$(touch {tmp_path}/ps4.ran)"
    return values


DUMP_SH = f"""#!/bin/bash
printf 'Status: 200 OK\\r\\n\\r\\n'
exec {PYTHON} -I -c 'import os; os.write(1, b"".join(k + b"=" + v + b"\\0" for k, v in os.environb.items()))'
"""


def environment(raw: bytes) -> dict[bytes, bytes]:
    response = parse_response(raw)
    assert response.status == 200, response.body
    return dict(item.split(b"=", 1) for item in response.body.split(b"\0") if item)


MODES = {
    "one-shot exec": (False, ()),
    "one-shot --fix-status": (False, ("--fix-status",)),
    "resident spawn": (True, ()),
    "resident --fix-status": (True, ("--fix-status",)),
}


@pytest.mark.parametrize("mode", MODES)
def test_hostile_request_variables_never_reach_the_script(tmp_path, server, mode):
    resident, args = MODES[mode]
    cgi = tmp_path / "cgi"
    cgi.mkdir()
    write_script(cgi / "env.sh", DUMP_SH)
    values = hostile_values(tmp_path)
    log = tmp_path / "gateway.log"
    data = request("GET", "/cgi/env.sh?q=1", params={**values, "SCRIPT_FILENAME": f"{cgi}/env.sh"})
    if resident:
        running = server(*args, f"{cgi}/")
        raw, log = running.raw(data), running.log
    else:
        raw = run_raw(["--stderr", log, *args, f"{cgi}/"], data)
    env = environment(raw)
    arrived = [name for name in HOSTILE_NAMES
               if env.get(name.encode("latin-1")) == values[name].encode("latin-1")]
    assert arrived == []
    assert not list(tmp_path.glob("*.ran")), "hostile code ran"
    assert env[b"QUERY_STRING"] == b"q=1" and env[b"SCRIPT_FILENAME"] == f"{cgi}/env.sh".encode()
    [line] = [line for line in log_lines(log) if "allow-list" in line]
    assert "'LD_PRELOAD'" in line and "more" in line and len(line) < 600


def test_hostile_table_is_big_enough():
    assert len(HOSTILE_NAMES) >= 25


def test_pass_var_lets_the_operator_allow_a_name(tmp_path):
    cgi = tmp_path / "cgi"
    cgi.mkdir()
    write_script(cgi / "env.sh", DUMP_SH)
    data = request(params={"REMOTE_USER": "alice", "AUTH_TYPE": "Basic", "LD_PRELOAD": "x",
                           "SCRIPT_FILENAME": f"{cgi}/env.sh"})
    env = environment(run_raw(["--pass-var", "REMOTE_USER", f"{cgi}/"], data))
    assert env[b"REMOTE_USER"] == b"alice"
    assert b"AUTH_TYPE" not in env and b"LD_PRELOAD" not in env


@pytest.mark.parametrize("name", ["LD-PRELOAD", "A%%", "", "1X", "A=B"])
def test_pass_var_takes_only_variable_names(name, capsys):
    from scgi_inetd.cgi_cli import main

    assert main(["--pass-var", name, "/bin/true"]) == 2
    assert "--pass-var wants a variable name" in capsys.readouterr().err


def test_allow_list_in_build_environ(monkeypatch):
    logged = []
    monkeypatch.setattr("scgi_inetd.cgi_env.log_line", logged.append)
    request_vars = {"REQUEST_METHOD": "GET", "HTTP_X_OK": "1", "HTTP_X%%": "2", "LD_PRELOAD": "3",
                    "REMOTE_USER": "4", "SCGI": "1", "HTTP_PROXY": "5"}
    environ = build_environ(request_vars, Script("/d/a.sh"), {})
    assert environ.keys() >= {"REQUEST_METHOD", "HTTP_X_OK"}
    assert not environ.keys() & {"HTTP_X%%", "LD_PRELOAD", "REMOTE_USER", "SCGI", "HTTP_PROXY"}
    assert logged == ["dropped request variables not on the allow-list: 'HTTP_X%%', 'LD_PRELOAD', "
                      "'REMOTE_USER'"]
    allowed = CgiConfig(script="/bin/true", pass_vars=["REMOTE_USER"]).allowed
    assert build_environ(request_vars, Script("/d/a.sh"), {}, allowed)["REMOTE_USER"] == "4"


def test_an_nginx_request_logs_nothing(monkeypatch):
    from scgi_inetd.client import build_params

    logged = []
    monkeypatch.setattr("scgi_inetd.cgi_env.log_line", logged.append)
    request_vars = dict(build_params("POST", "/x?a=1", [("Cookie", "c=1"), ("Proxy", "p")], b"xy"))
    request_vars.update({"SCGI": "1", "CONTENT_LENGTH": "2", "HTTPS": "on", "SERVER_ADDR": "::1",
                         "REDIRECT_STATUS": "200", "SCRIPT_NAME": "/x", "PATH_INFO": ""})
    build_environ(request_vars, Script("/d/a.sh"), {})
    assert logged == []
