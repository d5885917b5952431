/**
 * Why a role could not listen, in words that say what to change: which key
 * and flag set the port, and what already holds it. The holder is found the
 * way `ss -ltnp` does, from /proc: the listening socket's inode in
 * net/tcp{,6}, then the process with a file descriptor on that inode. Best
 * effort: another user's processes cannot be looked into without root.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { type Config, describeError } from "@picluster/common";

export interface PortHolder {
  pid: number;
  command: string;
}

const LISTEN = "0A";

/** Inodes of the sockets listening on `port` (TCP, IPv4 and IPv6). */
function listeningInodes(port: number, procRoot: string): Set<string> {
  const inodes = new Set<string>();
  for (const table of ["net/tcp", "net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(join(procRoot, table), "utf8");
    } catch {
      continue; // No IPv6, or no /proc: nothing to find there.
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      const local = f[1];
      if (local === undefined || f[3] !== LISTEN || f[9] === undefined || f[9] === "0") continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === port) inodes.add(f[9]);
    }
  }
  return inodes;
}

/** The process holding a socket listening on `port`, if this user can see it. */
export function portHolder(port: number, procRoot = "/proc"): PortHolder | undefined {
  const inodes = listeningInodes(port, procRoot);
  if (inodes.size === 0) return undefined;
  let pids: string[];
  try {
    pids = readdirSync(procRoot).filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(join(procRoot, pid, "fd"));
    } catch {
      continue; // Another user's process, or one that just exited.
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(join(procRoot, pid, "fd", fd));
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode === undefined || !inodes.has(inode)) continue;
      return { pid: Number(pid), command: commandOf(procRoot, pid) };
    }
  }
  return undefined;
}

function commandOf(procRoot: string, pid: string): string {
  try {
    const argv = readFileSync(join(procRoot, pid, "cmdline"), "utf8").split("\0");
    const text = argv.filter((a) => a !== "").join(" ");
    if (text !== "") return text.length > 120 ? `${text.slice(0, 117)}...` : text;
  } catch {
    // Gone already: the name alone, if still there.
  }
  try {
    return readFileSync(join(procRoot, pid, "comm"), "utf8").trim();
  } catch {
    return "?";
  }
}

/** The keys whose value is `port`, with their flags: `[http] port` / `--http-port`. */
function portKeys(config: Config, port: number): Array<{ key: string; flag: string }> {
  const keys: Array<{ key: string; flag: string }> = [];
  if (config.http.port === port) keys.push({ key: "[http] port", flag: "--http-port" });
  if (config.primary.port === port) keys.push({ key: "[primary] port", flag: "--primary-port" });
  if (config.legacy.port === port) keys.push({ key: "[legacy] port", flag: "--legacy-port" });
  return keys;
}

/**
 * A listen failure (port in use, or a privileged port) as one line naming
 * the key, the flag and the holder; undefined for any other error.
 */
export function explainListenError(
  err: unknown,
  config: Config,
  procRoot = "/proc",
): string | undefined {
  const e = err as NodeJS.ErrnoException & { port?: unknown; address?: unknown };
  if (typeof e !== "object" || e === null || typeof e.port !== "number") return undefined;
  if (e.code !== "EADDRINUSE" && e.code !== "EACCES") return undefined;
  const port = e.port;
  const keys = portKeys(config, port);
  const where = typeof e.address === "string" && e.address !== "" ? ` on ${e.address}` : "";
  const change =
    keys.length === 0
      ? ""
      : `; it is ${keys.map((k) => k.key).join(" and ")}: choose another with ${keys.map((k) => `${k.flag} PORT`).join(" or ")} (or in the config file)`;
  if (e.code === "EACCES") return `port ${port}${where} needs root (ports under 1024 do)${change}`;
  const holder = portHolder(port, procRoot);
  const by =
    holder === undefined
      ? " (by a process this user cannot see; `sudo ss -ltnp` names it)"
      : ` by pid ${holder.pid} (${holder.command})`;
  return `port ${port}${where} is already in use${by}${change}`;
}

/** `describeError`, or the listen failure explained when it is one. */
export function describeStartError(err: unknown, config: Config): string {
  return explainListenError(err, config) ?? describeError(err);
}
