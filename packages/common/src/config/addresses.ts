/**
 * `[agent] primary_host` entries: `host`, `host:port`, `[v6]`, `[v6]:port`
 * or a bare IPv6 address; the port defaults to `[agent] primary_port`.
 */
export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(entry: string, defaultPort: number): HostPort {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed !== null)
    return { host: bracketed[1] as string, port: portOf(bracketed[2], defaultPort, entry) };
  const colons = entry.split(":").length - 1;
  if (colons === 1) {
    const [host, port] = entry.split(":") as [string, string];
    return { host, port: portOf(port, defaultPort, entry) };
  }
  // No colon: a name or IPv4 address; several: a bare IPv6 address.
  return { host: entry, port: defaultPort };
}

function portOf(text: string | undefined, fallback: number, entry: string): number {
  if (text === undefined) return fallback;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    throw new RangeError(`"${entry}": the port must be 1–65535`);
  return port;
}

/** `host:port` as a person writes it (`[v6]:port` for IPv6). */
export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
