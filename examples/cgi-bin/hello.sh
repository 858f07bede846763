#!/bin/sh
# GET /cgi-bin/hello.sh?name=world: the query string, as received (still percent-encoded).
printf 'Status: 200 OK\r\n'
printf 'Content-Type: text/plain; charset=utf-8\r\n'
printf '\r\n'
printf 'Hello from sh\n'
printf 'QUERY_STRING=%s\n' "$QUERY_STRING"
printf 'PATH_INFO=%s\n' "$PATH_INFO"
