"""The boot-menu's configuration error, in a module of its own.

The validator (config) raises it and the loader raises and re-exports it:
here, neither has to import the other to name it, and a menu request, which
loads the config from its cache, never imports the validator.
"""

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """An invalid configuration; `errors` lists `key.path: message` lines.

    No RequestError: the file is the operator's, not the client's, and is
    wrong for every request alike. `check` reports it with exit status 1;
    the apps answer 500 with a generic message and log the errors.
    """

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors
