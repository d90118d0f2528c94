#!/bin/sh
# As the official image: a command starting with redis-server gets
# --protected-mode no first (its compiled-in default there).
if [ "${1:-}" = redis-server ]; then
    shift
    exec redis-server --protected-mode no --bind '* -::*' "$@"
fi
exec "$@"
