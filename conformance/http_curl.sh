# curl against the small HTTP upstream through the proxy: two URLs on one
# keep-alive connection, then a POST on another. Prints {"conns": [...]}.
# Env: HTTP_PORT.
set -eu
base="http://127.0.0.1:$HTTP_PORT"
[ "$(curl -sf "$base/item/mk401" "$base/item/mk402")" = "item mk401: v1item mk402: v1" ]
[ "$(curl -sf --data-binary mk403 "$base/echo")" = "mk403" ]
echo '{"conns": [2, 1]}'
