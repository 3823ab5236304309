#!/bin/sh
# The lockdown before Node.js starts: bin/mullvad-sidecar runs this as the very first
# instruction of `run`. It prints (render) or hands `nft -f -` (apply) the transaction
# lockdownTransactions(devices)[0] — the pieces were cut from the renderer's own output
# at build time (src/firewall/lockdown-template.ts, written to dist/bundle by
# scripts/bundle.mjs) — with the uplink guard on every device in NET_DIR whose name is
# simple: 1–15 ASCII letters and digits, exactly the names the renderer writes into a
# chain name as they are (src/firewall/uplink.ts). Device names are hostile input (an
# app with NET_ADMIN names its own): any other name never reaches nft and is left to the
# Node.js lockdown (src/cli/lockdown-first.ts), which hex-encodes it.
# POSIX sh, no eval, no command built from input: names only go through printf '%s'.
#   lockdown-first.sh render BUNDLE_DIR NET_DIR   print the transaction
#   lockdown-first.sh apply BUNDLE_DIR NET_DIR    apply it; with the guard refused (a
#     kernel before 5.16), the one without the guard
# Exit 0 only when the applied transaction is the one the Node.js lockdown would apply
# first (every device guarded), 1 otherwise: the caller then runs the Node.js lockdown.

# scan NET_DIR: sets `devices` (the simple names, sorted as the renderer's caller sorts
# them: byte order) and `others` (how many devices have another name).
scan() {
  devices=
  others=0
  # `*` skips names starting with a dot; the other two patterns catch them (not . and ..).
  for path in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    # a pattern that matched nothing stays as is and names no device (sysfs: links; no files)
    [ -L "$path" ] || [ -d "$path" ] || continue
    name=${path##*/}
    [ "$name" = lo ] && continue
    # explicit sets, no ranges: a range can match more than ASCII in some locales
    case $name in
      '' | *[!ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789]* | ????????????????*)
        others=$((others + 1))
        continue
        ;;
    esac
    insert "$name"
  done
}

# insert NAME into the space-separated `devices`, keeping byte order
insert() {
  rest=$devices
  devices=
  placed=
  for d in $rest; do
    if [ -z "$placed" ] && [ "$1" \< "$d" ]; then
      devices="$devices $1"
      placed=1
    fi
    devices="$devices $d"
  done
  [ -n "$placed" ] || devices="$devices $1"
}

# render BUNDLE_DIR NAME...: the transaction for these (already validated) names
render() {
  b=$1
  shift
  if [ $# -eq 0 ]; then
    cat "$b/lockdown.nft"
    return
  fi
  cat "$b/lockdown-head.nft" || return
  for dev in "$@"; do
    while IFS= read -r line; do
      # every @DEV@ on the line (a simple name contains no '@')
      while :; do
        case $line in
          *@DEV@*) line=${line%%@DEV@*}$dev${line#*@DEV@} ;;
          *) break ;;
        esac
      done
      printf '%s\n' "$line"
    done <"$b/lockdown-device.nft"
  done
  cat "$b/lockdown-tail.nft"
}

command=$1 bundle=$2 net_dir=$3
scan "$net_dir"
# Missing pieces would leave a partial transaction that nft could take: guard nothing
# then, and leave the devices to the Node.js lockdown.
for piece in head device tail; do
  if [ -n "$devices" ] && [ ! -r "$bundle/lockdown-$piece.nft" ]; then
    devices=
    others=$((others + 1))
  fi
done
# shellcheck disable=SC2086 # $devices: validated names, split on purpose
case $command in
  render) render "$bundle" $devices ;;
  apply)
    if [ -n "$devices" ] && render "$bundle" $devices | nft -f - >/dev/null 2>&1; then
      [ "$others" -eq 0 ]
    elif nft -f "$bundle/lockdown.nft" >/dev/null 2>&1; then
      [ -z "$devices" ] && [ "$others" -eq 0 ]
    else
      exit 1
    fi
    ;;
  *) exit 2 ;;
esac
