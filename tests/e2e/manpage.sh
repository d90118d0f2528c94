#!/usr/bin/env bash
# manpage.sh -- oneshot(1) renders cleanly, `make install` installs it, and
# its options, `oneshot --help`'s and README's configuration table's are
# the same set (the meta options --config, --print-config, --help and
# --version aside: README gives them in prose).
. "$(dirname "$0")/../harness/lib.sh"

PAGE=$ROOT/man/oneshot.1
META='^--(config|print-config|help|version)$'

help_opts() { "$ONESHOT" --help | grep -oE '^  --[a-z][a-z-]*' | sed 's/^  //' | grep -vE "$META" | sort -u; }
man_opts() { grep -A1 '^\.TP' "$PAGE" | grep -oE '^\\fB(\\-){2}[a-z]([a-z]|\\-)*' | sed 's/\\fB//; s/\\-/-/g' | grep -vE "$META" | sort -u; }
# The first cell of each row of the table under "## Configuration".
readme_opts() {
    awk '/^## Configuration/{on=1; next} on && /^## /{exit} on && /^\| `/' "$ROOT/README.md" |
        cut -d'|' -f2 | grep -oE -- '--[a-z][a-z-]*' | grep -vE "$META" | sort -u
}

t_renders() {
    local warn
    warn=$(groff -man -ww -z -Tutf8 "$PAGE" 2>&1)
    assert_eq "$warn" "" "groff warnings"
    MANWIDTH=80 man -l "$PAGE" >"$T_DIR/page" 2>"$T_DIR/err" || fail "man -l failed: $(cat "$T_DIR/err")"
    assert_eq "$(cat "$T_DIR/err")" "" "man -l's stderr"
    assert_contains "$(cat "$T_DIR/page")" "EXIT STATUS" "rendered page"
    [ "$(awk 'length > 80' "$T_DIR/page" | wc -l)" = 0 ] || fail "lines over 80 columns: $(awk 'length > 80' "$T_DIR/page" | head -2)"
}

t_same_options() {
    local h m r
    h=$(help_opts)
    m=$(man_opts)
    r=$(readme_opts)
    [ "$(echo "$h" | wc -l)" -ge 30 ] || fail "too few options in --help: $h"
    local d
    d=$(diff <(echo "$h") <(echo "$m")) || fail "--help vs man page: $(echo "$d" | grep '^[<>]' | tr '\n' ' ')"
    d=$(diff <(echo "$h") <(echo "$r")) || fail "--help vs README's table: $(echo "$d" | grep '^[<>]' | tr '\n' ' ')"
    # Each exit code the table of exitcodes.h names is in the page.
    local c
    for c in $(grep -oE '#define OS_EXIT_[A-Z_]+ +[0-9]+' "$ROOT/common/exitcodes.h" | awk '{print $3}' | grep -vxE '1|63'); do
        grep -q "^\.B $c\$" "$PAGE" || fail "exit code $c not in the page"
    done
}

t_installed() {
    make -s -C "$ROOT" install BUILD="$BUILD" DESTDIR="$T_DIR/root" PREFIX=/usr >"$T_DIR/out" 2>&1 ||
        fail "make install: $(tail -3 "$T_DIR/out")"
    cmp -s "$PAGE" "$T_DIR/root/usr/share/man/man1/oneshot.1" || fail "man page not installed"
}

t_run "man page renders cleanly with man -l" t_renders
t_run "man page, --help and README's table name the same options" t_same_options
t_run "make install installs the man page" t_installed
exit 0
