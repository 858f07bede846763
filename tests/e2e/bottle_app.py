"""A Bottle app (a framework nobody here wrote) that reads its whole upload: Bottle de-chunks
a body itself when the environ says Transfer-Encoding: chunked."""

import hashlib

import bottle

app = bottle.Bottle()


@app.post("/upload")
def upload():
    data = bottle.request.body.read()
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}\n"
