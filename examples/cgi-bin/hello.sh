#!/bin/sh
# The seed's hello world, with the Status line SCGI asks for.
echo "Status: 200 OK"
echo "Content-Type: text/plain"
echo ""
echo "Hello World"
