/**
 * Network: byte counters per interface from proc/net/dev, and each
 * interface's MAC (sys/class/net/<if>/address) and addresses (os facts).
 */
import type { MessageMap } from "@picluster/common";
import type { CollectorContext } from "./context.js";
import { clip, readOptional } from "./read.js";

export const NET_DEV = "proc/net/dev";
const MAX_INTERFACES = 256;
const MAX_ADDRESSES = 64;

export type NetInterface = MessageMap["details"]["interfaces"][number];

/** Cumulative bytes received and sent. */
export interface NetBytes {
  rx: number;
  tx: number;
}

/**
 * Counters per interface, loopback left out, in file order. Lines read
 * `  eth0: rxBytes rxPackets … (8 receive fields) txBytes …`; interface names
 * cannot contain ":", so the first one ends the name.
 */
export function parseNetDev(text: string): Map<string, NetBytes> {
  const counters = new Map<string, NetBytes>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (name === "" || name === "lo" || name.includes("|")) continue;
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    const rx = f[0];
    const tx = f[8];
    if (
      rx === undefined ||
      tx === undefined ||
      !Number.isSafeInteger(rx) ||
      !Number.isSafeInteger(tx)
    ) {
      continue;
    }
    counters.set(name, { rx, tx });
  }
  return counters;
}

/**
 * Every interface but loopback: the names in proc/net/dev (`names`), then any
 * more that Node knows of. Addresses are in CIDR form ("192.168.1.23/24").
 */
export async function readInterfaces(
  ctx: CollectorContext,
  names: string[],
): Promise<NetInterface[]> {
  const fromOs = ctx.os.networkInterfaces();
  const all = [...names];
  for (const [name, infos] of Object.entries(fromOs)) {
    if (all.includes(name) || name === "lo" || infos?.every((i) => i.internal)) continue;
    all.push(name);
  }
  return Promise.all(
    all.slice(0, MAX_INTERFACES).map(async (name): Promise<NetInterface> => {
      const infos = fromOs[name] ?? [];
      const sysMac = (await readOptional(ctx, `sys/class/net/${name}/address`))?.trim();
      const mac = sysMac || infos[0]?.mac || "";
      const addresses = infos.map((i) => clip(i.cidr ?? i.address, 64)).slice(0, MAX_ADDRESSES);
      return { name: clip(name, 64), mac: clip(mac, 64), addresses };
    }),
  );
}
