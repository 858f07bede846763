#!/bin/sh
# A client redirect (RFC 3875 6.2.3): only a Location header. With --fix-status
# scgi-run answers it as "Status: 302 Found".
printf 'Location: https://example.org/\n\n'
