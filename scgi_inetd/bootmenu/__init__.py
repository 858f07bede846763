"""The boot-menu app: per-machine iPXE and PXELINUX menus served over WSGI.

Modules, one concern each: `loader` (the validated config, from its marshal
cache or by parsing), `config` (parse and validate the TOML file),
`identity` (validate what a booting machine says about itself), `query`
(hand-parsed query strings and cookies), `template` (`{{name}}` variables),
`rules` (host rule matching and precedence), `menu` (a machine's resolved
menu), `ipxe` and `pxelinux` (renderers), `state` (SQLite, mark flags and the
inventory queue), `app` (the WSGI app), `admin` (the admin page and JSON
API, a separate app on a socket of its own), `cli` (the command line).

Nothing is imported here: the request path loads only what it uses.
"""
