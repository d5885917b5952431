/**
 * An address of this machine that is not loopback, for tests of what the
 * primary does when bound beyond it: a veth pair made for the test (`ip`,
 * Debian's iproute2; root), removed when the test ends. Traffic to it stays
 * on this machine.
 */
import { execFileSync } from "node:child_process";
import { randomInt } from "node:crypto";

export interface NetContext {
  after(fn: () => void | Promise<void>): void;
}

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** Why such an address cannot be made here, or undefined when it can. */
export const NO_NET_ADMIN: string | undefined = (() => {
  const probe = `picp${process.pid % 10_000}`;
  try {
    ip("link", "add", probe, "type", "veth", "peer", "name", `${probe}b`);
    ip("link", "del", probe);
    return undefined;
  } catch (err) {
    return `cannot make a veth pair here (needs root and iproute2): ${String(err).split("\n")[0]}`;
  }
})();

/** A fresh non-loopback address on a veth pair of this test's own. */
export function nonLoopbackAddress(t: NetContext): string {
  const a = `pica${randomInt(10_000)}`;
  const net = `10.231.${randomInt(256)}.${randomInt(64) * 4}`;
  const base = net.split(".").map(Number);
  const host = (n: number) => `${base[0]}.${base[1]}.${base[2]}.${(base[3] ?? 0) + n}`;
  ip("link", "add", a, "type", "veth", "peer", "name", `${a}b`);
  t.after(() => {
    try {
      ip("link", "del", a);
    } catch {
      // Already gone.
    }
  });
  ip("addr", "add", `${host(1)}/30`, "dev", a);
  ip("addr", "add", `${host(2)}/30`, "dev", `${a}b`);
  ip("link", "set", a, "up");
  ip("link", "set", `${a}b`, "up");
  return host(1);
}
