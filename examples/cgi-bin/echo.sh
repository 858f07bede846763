#!/bin/sh
# Sends the request body back. Reads exactly CONTENT_LENGTH bytes: nginx
# never closes its side, so reading to end of file would hang.
length=${CONTENT_LENGTH:-0}
printf 'Status: 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %s\r\n\r\n' "$length"
exec head -c "$length"
