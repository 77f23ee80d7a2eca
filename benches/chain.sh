# Sourced by benches/run.sh and benches/ab.sh: the 3-hop chain their ghz runs
# check, recorded one way for both.
#
# record_chain BATON ROOT_KEY DIR PREFIX [BEARER_REF]
#   on the node BATON_SERVER names (BATON_CA… for TLS): registers
#   PREFIX-as.example (signed by ROOT_KEY), PREFIX-gw and PREFIX-mcp (keys
#   in DIR, made once), issues jti:PREFIX-1 and narrows it to jti:PREFIX-2
#   and jti:PREFIX-3 (and, given BEARER_REF, once more to that reference:
#   the bridges look bearer tokens up by digest). Fails unless the leaf
#   checks ACTIVE.
record_chain() {
    local baton=$1 root=$2 dir=$3 p=$4 bearer=${5:-}
    local scope=(--scopes repo:read --tools github/search)
    for k in as gw mcp; do
        [ -f "$dir/$p-$k.key" ] || "$baton" keygen --out "$dir/$p-$k.key" >/dev/null
    done
    "$baton" register --key "$root" --client-id "$p-as.example" --kind authorization-server \
        --role delegating-layer --client-key "$dir/$p-as.key" "${scope[@]}" >/dev/null
    for c in gw mcp; do
        "$baton" register --key "$dir/$p-as.key" --registered-by "$p-as.example" --client-id "$p-$c" \
            --kind gateway --role delegating-layer --client-key "$dir/$p-$c.key" "${scope[@]}" >/dev/null
    done
    "$baton" issue --key "$dir/$p-as.key" --issuer "$p-as.example" --token "jti:$p-1" --subject "user:$p" \
        --holder "$p-gw" --audience "https://$p-gw.example/" "${scope[@]}" >/dev/null
    "$baton" narrow --key "$dir/$p-gw.key" --parent "jti:$p-1" --token "jti:$p-2" --performed-by "$p-gw" \
        --holder "$p-mcp" --audience "https://$p-mcp.example/" "${scope[@]}" >/dev/null
    "$baton" narrow --key "$dir/$p-mcp.key" --parent "jti:$p-2" --token "jti:$p-3" --performed-by "$p-mcp" \
        --holder "$p-mcp" --audience "https://$p-mcp.example/" "${scope[@]}" >/dev/null
    if [ -n "$bearer" ]; then
        "$baton" narrow --key "$dir/$p-mcp.key" --parent "jti:$p-3" --token "$bearer" --performed-by "$p-mcp" \
            --holder "$p-mcp" --audience "https://$p-mcp.example/" "${scope[@]}" >/dev/null
    fi
    [[ "$("$baton" check "jti:$p-3")" == *ACTIVE* ]]
}
