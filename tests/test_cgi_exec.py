"""scgi-run end to end: real sh, Perl and Python scripts over a real socketpair."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from scgi_inetd.cgi_cli import main, parse_arguments
from scgi_inetd.options import UsageError

from .cgi_support import log_lines, request, run, run_raw, write_script
from .support import EXAMPLES, EXPENSIVE_MODULES, ONE_SHOT_MODULES, one_shot_imports, python_cmd

CGI_BIN = EXAMPLES / "cgi-bin"

# Each prints the sha256 and length of exactly CONTENT_LENGTH body bytes.
CHECKSUM_SCRIPTS = {
    "sh": "#!/bin/sh\nprintf 'Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n'\n"
          "head -c \"$CONTENT_LENGTH\" | sha256sum | cut -d' ' -f1\n",
    "perl": "#!/usr/bin/perl\nuse Digest::SHA;\nmy $n = $ENV{CONTENT_LENGTH}; my $d = Digest::SHA->new(256);\n"
            "while ($n > 0) { my $got = sysread(STDIN, my $buf, $n > 65536 ? 65536 : $n); last unless $got;"
            " $d->add($buf); $n -= $got; }\nprint \"Status: 200 OK\\r\\n\\r\\n\", $d->hexdigest, \"\\n\";\n",
    "python": "#!{python}\nimport hashlib, os\nn = int(os.environ['CONTENT_LENGTH']); h = hashlib.sha256()\n"
              "while n > 0:\n    b = os.read(0, min(n, 1 << 20))\n    if not b: break\n    h.update(b); n -= len(b)\n"
              "os.write(1, b'Status: 200 OK\\r\\n\\r\\n' + h.hexdigest().encode() + b'\\n')\n",
}


@pytest.mark.parametrize("script, expected", [
    ("hello.sh", b"Hello from sh\nQUERY_STRING=name=a%20b&x=1\nPATH_INFO=\n"),
    ("hello.pl", b"Hello from Perl\nREQUEST_METHOD=GET\nname: a b\nx: 1\n"),
])
def test_get_with_query_string(script, expected):
    response = run([CGI_BIN / script], uri=f"/cgi-bin/{script}?name=a%20b&x=1")
    assert response.status == 200
    assert response.body == expected


def test_python_echo_in_directory_mode():
    response = run([f"{CGI_BIN}/"], "POST", "/cgi-bin/echo.py", body=b"abc\x00\xff",
                   params={"SCRIPT_FILENAME": f"{CGI_BIN}/echo.py"})
    assert response.status == 200
    assert response.body == b"abc\x00\xff"


@pytest.mark.parametrize("language", sorted(CHECKSUM_SCRIPTS))
@pytest.mark.parametrize("size", [0, 1, 1 << 20])
def test_body_reaches_script_intact(tmp_path, language, size):
    body = os.urandom(size)
    script = write_script(tmp_path / f"sum.{language}", CHECKSUM_SCRIPTS[language])
    response = run([script], "POST", "/sum", body=body)
    assert response.status == 200
    assert response.body.strip() == hashlib.sha256(body).hexdigest().encode()


@pytest.mark.parametrize("language", ["sh", "python"])
def test_100_mib_body(tmp_path, language):
    body = os.urandom(1 << 20) * 100
    script = write_script(tmp_path / f"sum.{language}", CHECKSUM_SCRIPTS[language])
    response = run([script], "POST", "/sum", body=body, timeout=120)
    assert response.body.strip() == hashlib.sha256(body).hexdigest().encode()


def test_stderr_never_reaches_client(tmp_path):
    script = write_script(tmp_path / "noisy.sh", "#!/bin/sh\necho LEAK-BEFORE >&2\n"
                          "printf 'Status: 200 OK\\r\\n\\r\\nclean\\n'\necho LEAK-AFTER >&2\n")
    raw = run_raw([script], request())
    assert b"LEAK" not in raw and raw.endswith(b"clean\n")
    log = tmp_path / "log"
    raw = run_raw(["--stderr", log, script], request())
    assert b"LEAK" not in raw
    assert log_lines(log) == ["LEAK-BEFORE", "LEAK-AFTER"]


def test_stderr_of_shim_errors_goes_to_log_once(tmp_path):
    log = tmp_path / "log"
    response = run(["--stderr", log, f"{tmp_path}/"], params={"SCRIPT_FILENAME": f"{tmp_path}/nope"})
    assert response.status == 404
    assert b"nope" not in response.body
    [line] = log_lines(log)
    assert "404" in line and "nope" in line


def test_malformed_header_is_400_with_one_log_line(tmp_path):
    log = tmp_path / "log"
    raw = run_raw(["--stderr", log, CGI_BIN / "hello.sh"], b"3:abc,")
    assert raw.startswith(b"Status: 400 ")
    assert len(log_lines(log)) == 1


def test_header_timeout_is_408(tmp_path):
    raw = run_raw(["--header-timeout", "0.3", CGI_BIN / "hello.sh"], b"20:CONTENT_LENG")
    assert raw.startswith(b"Status: 408 ")


def test_exec_failure_is_500(tmp_path):
    script = write_script(tmp_path / "bad-interpreter", "#!/nonexistent/interpreter\n")
    for args in ([script], ["--fix-status", script]):
        response = run(args, params={"SCRIPT_FILENAME": str(script)})
        assert response.status == 500
        assert b"nonexistent" not in response.body


def test_error_path_drains_the_body(tmp_path):
    """A 404 with a body nobody reads: the shim reads it so the client sees no reset."""
    response = run([f"{tmp_path}/"], "POST", body=b"x" * 3_000_000,
                   params={"SCRIPT_FILENAME": f"{tmp_path}/missing"})
    assert response.status == 404


def test_script_args_and_cwd(tmp_path):
    script = write_script(tmp_path / "args.sh",
                          "#!/bin/sh\nprintf 'Status: 200 OK\\r\\n\\r\\n'; printf '%s|' \"$@\"; pwd\n")
    response = run([script, "one", "two words"])
    assert response.body == f"one|two words|{tmp_path}\n".encode()


def test_signals_are_default_in_the_script(tmp_path):
    """Python ignores SIGPIPE and SIGXFSZ; the script must not inherit that.

    Only the standard signals (1-31) are checked: glibc's posix_spawn leaves
    its own internal signals 32 and 33 ignored, which no script can use.
    """
    script = write_script(tmp_path / "sig.sh",
                          "#!/bin/sh\nprintf 'Status: 200 OK\\r\\n\\r\\n'; grep -E '^Sig(Ign|Blk)' /proc/self/status\n")
    for args in ([script], ["--fix-status", script]):
        fields = dict(line.split(":\t") for line in run(args).body.decode().splitlines())
        assert int(fields["SigIgn"], 16) & 0x7FFFFFFF == 0, fields
        assert int(fields["SigBlk"], 16) == 0, fields


@pytest.mark.parametrize("argv, message", [
    ([], "name a directory"),
    (["--timeout", "0", "x"], "--timeout must be greater than 0"),
    (["--env", "NOEQUALS", "x"], "NAME=VALUE"),
    (["--bogus", "x"], "unknown option '--bogus'"),
    (["--requests-per-child", "5", "x"], "--requests-per-child is not an option of scgi-run"),
    (["/nonexistent/dir/"], "not a directory"),
    (["/nonexistent/script"], "no such script"),
    (["--max-children", "many", "x"], "needs a number"),
])
def test_cli_refuses(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.endswith(" (see 'scgi-run --help')\n") and err.count("\n") == 1


def test_cli_options_before_positionals():
    options, rest = parse_arguments(
        ["--env", "A=1", "--stderr", "/x", "--fix-status", "--timeout=2.5", "--pass-env", "HOME",
         "--max-children", "3", "script", "--env", "B=2"])
    assert options.env == [("A", "1")] and options.pass_env == ["HOME"]
    assert options.fix_status and options.timeout == 2.5
    assert options.stderr == "/x" and options.max_children == 3
    assert rest == ["script", "--env", "B=2"]
    with pytest.raises(UsageError):
        parse_arguments(["--timeout"])


@pytest.mark.parametrize("mode", ["script", "directory"])
def test_one_shot_request_imports_nothing_expensive(tmp_path, mode):
    """Every module scgi-run imports before it becomes the script (-X importtime, log included)."""
    script = write_script(tmp_path / "hello.sh", "#!/bin/sh\nprintf 'Status: 200 OK\\r\\n\\r\\nhi\\n'\n")
    log = tmp_path / "log"
    target = [str(script)] if mode == "script" else [f"{tmp_path}/"]
    argv = python_cmd("scgi-run", "--stderr", str(log), *target)
    imported, response = one_shot_imports(argv, request(params={"SCRIPT_FILENAME": str(script)}), log)
    assert response.endswith(b"\r\n\r\nhi\n"), response
    assert "scgi_inetd.cgi_exec" in imported and "scgi_inetd.reader" in imported
    assert not imported & EXPENSIVE_MODULES, sorted(imported & EXPENSIVE_MODULES)
    ours = sorted(name for name in imported if name.split(".")[0] == "scgi_inetd")
    assert len(ours) == ONE_SHOT_MODULES + (mode == "directory"), ours  # + script_resolver for DIR/

