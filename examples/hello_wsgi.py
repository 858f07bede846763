"""The PEP 3333 hello-world app, served by scgi-wsgi.

inetd.conf (one process per connection):
    /run/hello.sock stream unix nowait.1000 www-data /usr/bin/python3 python3 -I /usr/local/bin/scgi-wsgi /srv/hello_wsgi.py:application --stderr /var/log/hello.log
"""


def application(environ, start_response):
    body = b"Hello, world!\n"
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    from scgi_inetd import run_app

    raise SystemExit(run_app(application))
