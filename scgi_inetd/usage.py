"""What --help prints for each program and boot-menu subcommand: its usage lines, and its options from the table.

Only --help imports this module: the usage text is not loaded by the
requests a one-shot program serves. The options' own help lives beside
them, in scgi_inetd.options.OPTIONS, whose parser hands them over: this
module imports nothing of the package (the parser imports it).
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Sequence

__all__ = ["PROGRAMS", "help_text"]

# Usage lines and a description for each program and subcommand, for --help.
PROGRAMS = {
    "scgi-run": ("scgi-run [OPTIONS] DIR/              run the script SCRIPT_FILENAME names, inside DIR\n"
          "scgi-run [OPTIONS] SCRIPT [ARGS...]  run SCRIPT with ARGS, whatever the request names",
          "Run a CGI script for the SCGI connection on fds 0 and 1 (inetd nowait), or for each\n"
          "connection on a listening socket (inetd wait, systemd Accept=no, --listen).\n"
          "Options come before DIR/ or SCRIPT."),
    "scgi-wsgi": ("scgi-wsgi [OPTIONS] TARGET [OPTIONS]",
           "Serve the WSGI app TARGET on the SCGI connection on fds 0 and 1 (inetd nowait), or on\n"
           "a listening socket (inetd wait, systemd Accept=no, --listen).\n"
           "TARGET: package.module:callable or path/to/file.py:callable\n"
           "(the callable defaults to `application`, then `app`)."),
    "scgi-bootmenu": ("scgi-bootmenu [OPTIONS] CONFIG [OPTIONS]     serve the boot menu (one-shot or resident)\n"
               "scgi-bootmenu [--cache PATH] CONFIG check    validate; exit 1 on errors\n"
               "scgi-bootmenu CONFIG init                    create the state database\n"
               "scgi-bootmenu CONFIG next MAC ENTRY [--until-done]\n"
               "                                             mark MAC's next boot\n"
               "scgi-bootmenu CONFIG done MAC                clear MAC's mark\n"
               "scgi-bootmenu CONFIG hosts [--json]          machines seen, and marks\n"
               "scgi-bootmenu CONFIG export --tftp DIR       menus as files, for TFTP-only loaders\n"
               "scgi-bootmenu CONFIG render --mac MAC [OPTIONS]\n"
               "                                             print the menu a machine would get\n"
               "scgi-bootmenu [OPTIONS] CONFIG admin [--secret-file PATH] [--remote-user]\n"
               "                                             serve the admin page and API",
               "Serve per-machine iPXE and PXELINUX boot menus from CONFIG, or manage them.\n"
               "Each subcommand answers --help."),
    "scgi-bootmenu check": ("scgi-bootmenu [--cache PATH] CONFIG check",
                            "Validate CONFIG (bypassing the cache) and refresh the cache; exit 1 on errors."),
    "scgi-bootmenu init": ("scgi-bootmenu CONFIG init", "Create the state database CONFIG names."),
    "scgi-bootmenu next": ("scgi-bootmenu CONFIG next MAC ENTRY [--until-done]", "Make the machine MAC boot ENTRY next."),
    "scgi-bootmenu done": ("scgi-bootmenu CONFIG done MAC", "Clear the mark of the machine MAC."),
    "scgi-bootmenu hosts": ("scgi-bootmenu CONFIG hosts [--json]", "List the machines seen, and their marks."),
    "scgi-bootmenu export": ("scgi-bootmenu CONFIG export --tftp DIR",
                             "Write the per-machine PXELINUX and GRUB files into DIR, for loaders that\n"
                             "read TFTP only (shim and GRUB under Secure Boot); nothing is half-written."),
    "scgi-bootmenu admin": ("scgi-bootmenu [OPTIONS] CONFIG admin [--secret-file PATH] [--remote-user]",
                            "Serve the admin page and JSON API, one-shot or resident; the serving options\n"
                            "go before CONFIG. It needs --secret-file, --remote-user, or both."),
    "scgi-bootmenu render": ("scgi-bootmenu CONFIG render --mac MAC [OPTIONS]",
             "Print the menu the machine described by the options would get now."),
    "scgi-call": ("scgi-call [OPTIONS] ADDRESS [URI]\n"
           "scgi-call [OPTIONS] --exec COMMAND [URI]",
           "Make one SCGI request, as nginx would send it, and print the response like `curl -i`.\n"
           "ADDRESS is unix:PATH or HOST:PORT; URI (default /) may carry a query string.\n"
           "Exit status: 0 for a 1xx-4xx answer, 1 for 5xx, 2 for a usage, protocol or\n"
           "connection error, 3 when --timeout passed first (what arrived is printed)."),
}


def help_text(program: str, options: "Sequence[tuple[Any, ...]]") -> str:
    """The --help of `program` (a program, or 'scgi-bootmenu SUBCOMMAND'): PROGRAMS, and its `options`.

    `options` are its entries of the table options.OPTIONS (options_of).
    """
    import textwrap

    synopsis, description = PROGRAMS[program]
    lines = ["usage: " + synopsis.replace("\n", "\n       "), "", description, "", "options:"]
    entries = [("-h --help", "", "show this help and exit", None),
               ("--version", "", "print the program's name and version and exit", None)]
    entries += [(names, metavar, help, default) for names, _, _, default, _, metavar, help in options]
    for names, metavar, help, default in entries:
        if default not in (None, False, ()):
            help += f" (default {default:g})" if isinstance(default, float) else f" (default {default})"
        label = "  " + ", ".join(names.split()) + (" " + metavar if metavar else "")
        wrapped = textwrap.wrap(help, 79 - 25)
        if len(label) > 23:
            lines.append(label)
            label = ""
        lines.append(label.ljust(25) + wrapped[0])
        lines.extend(" " * 25 + line for line in wrapped[1:])
    return "\n".join(lines) + "\n"
