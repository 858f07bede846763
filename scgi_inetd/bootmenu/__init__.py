"""The boot-menu app: per-machine iPXE and PXELINUX menus served over WSGI.

Modules, one concern each: `loader` (the validated config, from its marshal
cache or by parsing), `config` (parse and validate the TOML file),
`identity` (validate what a booting machine says about itself), `query`
(hand-parsed query strings and cookies), `template` (`{{name}}` variables),
`rules` (host rule matching and precedence), `menu` (a machine's resolved
menu), `ipxe` and `pxelinux` (renderers), `state` (SQLite, mark flags and the
inventory queue), `app` (the WSGI app), `admin` (the admin page and JSON
API, a separate app on a socket of its own), `cli` (the command line).

Nothing is imported here: the request path loads only what it uses. The
two apps' factories are offered here, each loaded on first use.
"""

__all__ = ["make_admin_app", "make_app"]


def __getattr__(name: str) -> object:
    if name == "make_app":
        from .app import make_app

        return make_app
    if name == "make_admin_app":
        from .admin import make_admin_app

        return make_admin_app
    raise AttributeError(f"module 'scgi_inetd.bootmenu' has no attribute {name!r}")
