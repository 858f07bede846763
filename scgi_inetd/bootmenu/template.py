"""`{{name}}` variables in entry fields and file templates.

iPXE expands `${setting}` itself at boot time, so that syntax must reach the
script untouched; `{{name}}` does not clash with it, nor with shell `$x`.
Only `{{` + a name + `}}` with nothing else inside is a variable: any other
`{{` (a Jinja `{{ v1.x }}` in cloud-init user-data, say) passes through as
text. Values are inserted literally; they are not expanded again.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds of import per request
    from typing import Iterator, Mapping

__all__ = ["expand", "is_name", "names"]


def is_name(text: str) -> bool:
    """A variable name: ASCII letters, digits and '_', not starting with a digit."""
    return (bool(text) and text.isascii() and not text[0].isdigit()
            and text.replace("_", "a").isalnum())


def _pieces(text: str) -> Iterator[tuple[str, str | None]]:
    """(literal text, variable name or None) pieces of `text`, in order."""
    start = 0
    search = 0
    while True:
        open_at = text.find("{{", search)
        if open_at < 0:
            break
        close_at = text.find("}}", open_at + 2)
        if close_at < 0:
            break
        name = text[open_at + 2:close_at]
        if is_name(name):
            yield text[start:open_at], name
            start = search = close_at + 2
        else:
            search = open_at + 1
    yield text[start:], None


def names(text: str) -> list[str]:
    """The variable names used in `text`, in order of appearance."""
    return [name for _, name in _pieces(text) if name is not None]


def expand(text: str, variables: Mapping[str, str]) -> str:
    """`text` with each `{{name}}` replaced by its value ('' when unset)."""
    if "{{" not in text:
        return text
    out = []
    for literal, name in _pieces(text):
        out.append(literal)
        if name is not None:
            out.append(variables.get(name, ""))
    return "".join(out)
