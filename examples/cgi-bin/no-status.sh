#!/bin/sh
# A script without a Status line, as many old CGI programs (AWStats) are.
# SCGI requires Status: run it with scgi-run --fix-status.
printf 'Content-Type: text/plain\n\n'
printf 'no Status line here\n'
