"""scgi_inetd: run CGI scripts and WSGI apps over SCGI, one process per connection.

Kept nearly empty on purpose: an interpreter starts for every request, so this
package imports nothing it does not need. `run_app` is loaded on first use.
"""

from .protocol import ProtocolError, RequestError

__all__ = ["ProtocolError", "RequestError", "run_app"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "run_app":
        from .wsgi import run_app

        return run_app
    raise AttributeError(f"module 'scgi_inetd' has no attribute {name!r}")
