/**
 * Joining a node with one pasted command. The primary serves the install
 * script (/join.sh) and the agent itself (/join/agent.cjs, one bundled file),
 * so a node needs nothing from the internet, only Node.js 20. Plain HTTP is
 * enough because nothing secret travels and everything is checked: the
 * pasted command carries the script's SHA-256, the script carries the
 * agent's, and the join token reaches the node only in the pasted line,
 * never over the network. The line hands it to the script on standard input
 * and the script keeps it in a file beside the config, so it is on no
 * command line (`ps`) at any point. From then on the agent link is TLS-PSK.
 */
import { createHash } from "node:crypto";

export interface JoinSettings {
  /** Base URL of this primary's HTTP server as nodes reach it, e.g. http://pi-master:8123 */
  httpUrl: string;
  /** Host name or address nodes use for the agent link. */
  primaryHost: string;
  agentPort: number;
  /** SHA-256 (hex) of the agent bundle served at /join/agent.cjs. */
  bundleSha256: string;
  /** Scale-out: the other primaries' agent addresses (`host:port`), tried after this one. */
  alsoPrimaries?: readonly string[];
}

/** `[agent] primary_host` for a joining node: this primary, then (scale-out) the others with their ports. */
export function primaryHosts(host: string, port: number, also: readonly string[] = []): string {
  if (also.length === 0) return host;
  return [host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`, ...also].join(",");
}

export function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Single-quote a value for sh: nothing inside is interpreted. */
function shq(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export function installScript(s: JoinSettings): string {
  return `#!/bin/sh
# picluster agent installer, served by the primary at ${s.httpUrl}/join.sh
# Usage: sh join.sh --token-file FILE|- [--name NAME] [--prefix DIR] [--config FILE] [--data-dir DIR] [--dry-run]
# (--token TOKEN works too, but puts the token where \`ps\` shows it; - reads it from standard input)
set -eu
HTTP=${shq(s.httpUrl)}
PRIMARY_HOST=${shq(primaryHosts(s.primaryHost, s.agentPort, s.alsoPrimaries))}
AGENT_PORT=${s.agentPort}
BUNDLE_SHA256=${s.bundleSha256}
TOKEN=""; TOKEN_FILE=""; NAME=""; PREFIX=/opt/picluster; CONFIG=/etc/picluster/picluster.ini; DATA=/var/lib/picluster; DRY_RUN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --token) TOKEN="$2"; shift 2 ;;
    --token-file) TOKEN_FILE="$2"; shift 2 ;;
    --name) NAME="$2"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --data-dir) DATA="$2"; shift 2 ;;
    --dry-run) DRY_RUN="--dry-run"; shift ;;
    *) echo "error: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ "$TOKEN_FILE" = "-" ]; then
  IFS= read -r TOKEN || [ -n "$TOKEN" ] || { echo "error: no join token on standard input" >&2; exit 2; }
elif [ -n "$TOKEN_FILE" ]; then
  [ -r "$TOKEN_FILE" ] || { echo "error: cannot read the join token from $TOKEN_FILE" >&2; exit 2; }
  IFS= read -r TOKEN < "$TOKEN_FILE" || [ -n "$TOKEN" ] || { echo "error: no join token in $TOKEN_FILE" >&2; exit 2; }
fi
[ -n "$TOKEN" ] || { echo "error: --token-file is required (from \\\`picluster node add NAME\\\` on the primary)" >&2; exit 2; }
command -v node >/dev/null 2>&1 || { echo "error: Node.js 20 or newer is needed on this node; install it first (e.g. apt install nodejs)" >&2; exit 1; }
MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$MAJOR" -ge 20 ] || { echo "error: Node.js $MAJOR is installed; picluster needs 20 or newer" >&2; exit 1; }
echo "picluster: fetching the agent from $HTTP"
mkdir -p "$PREFIX"
TMP="$PREFIX/picluster-agent.cjs.download"
# Node.js is needed anyway, so it does the download too (no curl or wget needed).
node -e 'fetch(process.argv[1]).then(async (r) => { if (!r.ok) throw new Error("HTTP " + r.status); require("fs").writeFileSync(process.argv[2], Buffer.from(await r.arrayBuffer())); }).catch((e) => { console.error("error: cannot fetch the agent: " + e.message); process.exit(1); })' "$HTTP/join/agent.cjs" "$TMP"
SUM=$(node -e 'const c=require("crypto"),f=require("fs");process.stdout.write(c.createHash("sha256").update(f.readFileSync(process.argv[1])).digest("hex"))' "$TMP")
[ "$SUM" = "$BUNDLE_SHA256" ] || { rm -f "$TMP"; echo "error: the agent download does not match its checksum; not installed" >&2; exit 1; }
mv "$TMP" "$PREFIX/picluster-agent.cjs"
mkdir -p "$(dirname "$CONFIG")"
umask 077
# The token in a file of its own: the config holds no secret, and the agent reads it only until it has joined.
TOKEN_DEST="$(dirname "$CONFIG")/join-token"
printf '%s\\n' "$TOKEN" > "$TOKEN_DEST"
{
  echo "# picluster agent, written by join.sh"
  echo "[node]"
  echo "data_dir = $DATA"
  [ -z "$NAME" ] || echo "name = $NAME"
  echo "[agent]"
  echo "primary_host = $PRIMARY_HOST"
  echo "primary_port = $AGENT_PORT"
  echo "join_token_file = $TOKEN_DEST"
} > "$CONFIG"
node "$PREFIX/picluster-agent.cjs" config check --config "$CONFIG"
if [ -z "$DRY_RUN" ]; then
  id -u picluster >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin picluster
  chgrp picluster "$CONFIG" "$TOKEN_DEST" && chmod 0640 "$CONFIG" "$TOKEN_DEST"
fi
node "$PREFIX/picluster-agent.cjs" service install agent --config "$CONFIG" $DRY_RUN
echo "picluster: agent installed; it joins $PRIMARY_HOST:$AGENT_PORT"
`;
}

/**
 * The line `picluster node add` prints: fetch, verify, run. The token goes
 * to the script on standard input (printf is a shell builtin, so no process
 * has it in its arguments).
 */
export function joinCommand(s: JoinSettings, token: string, name: string): string {
  const script = sha256(installScript(s));
  return `curl -fsSL ${s.httpUrl}/join.sh -o /tmp/picluster-join.sh && echo "${script}  /tmp/picluster-join.sh" | sha256sum -c --quiet && printf '%s\\n' ${shq(token)} | sudo sh /tmp/picluster-join.sh --token-file - --name ${name}`;
}

/**
 * The line `picluster node add` prints for a node where picluster is
 * already installed: the agent started by hand, the token on standard input.
 */
export function manualJoinCommand(
  primaryHost: string,
  agentPort: number,
  token: string,
  also: readonly string[] = [],
): string {
  const hosts = primaryHosts(primaryHost, agentPort, also);
  // Quoted only when it is a list (the embedded line stays as it always was).
  return `printf '%s\\n' ${token} | picluster agent --agent-primary-host ${also.length === 0 ? hosts : shq(hosts)} --agent-primary-port ${agentPort} --agent-join-token-file -`;
}
