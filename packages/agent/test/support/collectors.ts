/** Fixture trees and fakes for the collector tests. */
import { cp } from "node:fs/promises";
import type { CpuInfo, NetworkInterfaceInfo } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { type MessageMap, parseEnvelope } from "@picluster/common";
import { scratchDir } from "@picluster/common/testing";
import type { DiskSpace, OsFacts, StatFs } from "../../src/collectors/index.js";

/** packages/agent/test/fixtures, from dist/test/support/. */
export const FIXTURES = fileURLToPath(new URL("../../../test/fixtures/", import.meta.url));

export type FixtureName = "pi4" | "pi-zero-2w" | "pi5" | "x86-server";

/** Trees under fixtures/real/, captured on real machines (see real/SOURCES). */
export type RealCaptureName =
  | "procfs-pi4-armv7"
  | "procfs-sun8i-armv7-legacy"
  | "procfs-imapx200-arm1136"
  | "procfs-thermal"
  | "gopsutil-mt8183-android"
  | "py-cpuinfo-pi1-model-b"
  | "py-cpuinfo-pi1-model-b-plus";

/** A private copy of a fixture tree, removed when the test ends. */
export async function copyFixture(t: TestContext, name: FixtureName): Promise<string> {
  const root = scratchDir(t, `picluster-${name}-`);
  await cp(join(FIXTURES, name), root, { recursive: true });
  return root;
}

/**
 * A real capture laid over a private copy of x86-server. The captures are one
 * or a few files (a cpuinfo, two thermal zones); the rest of what the
 * collectors need (stat, meminfo, …) comes from x86-server, which has no
 * device tree, cpufreq, thermal zones, hwmon or Pi firmware, so whatever
 * board, core names and temperatures come out come from the capture alone.
 */
export async function copyRealCapture(t: TestContext, name: RealCaptureName): Promise<string> {
  const root = await copyFixture(t, "x86-server");
  await cp(join(FIXTURES, "real", name), root, { recursive: true });
  return root;
}

/** Copy the tree's next/ snapshot (stat, diskstats, net/dev "10 s later") over it. */
export async function advance(root: string): Promise<void> {
  await cp(join(root, "next"), root, { recursive: true });
}

/** Recorded disk sizes by mount point; any other mount fails like a missing one. */
export function recordedStatFs(sizes: Record<string, DiskSpace>): StatFs {
  return async (mount) => {
    const space = sizes[mount];
    if (space === undefined) throw Object.assign(new Error(`ENOENT: ${mount}`), { code: "ENOENT" });
    return space;
  };
}

function cpu(model: string, speed: number): CpuInfo {
  return { model, speed, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } };
}

function ipv4(address: string, cidr: string, mac: string): NetworkInterfaceInfo {
  return { address, netmask: "255.255.255.0", family: "IPv4", mac, internal: false, cidr };
}

function ipv6(address: string, cidr: string, mac: string): NetworkInterfaceInfo {
  return {
    address,
    netmask: "ffff:ffff:ffff:ffff::",
    family: "IPv6",
    mac,
    internal: false,
    cidr,
    scopeid: 2,
  };
}

const LOOPBACK: NetworkInterfaceInfo = {
  address: "127.0.0.1",
  netmask: "255.0.0.0",
  family: "IPv4",
  mac: "00:00:00:00:00:00",
  internal: true,
  cidr: "127.0.0.1/8",
};

/**
 * OsFacts that return fixed values. On Linux the collectors use hostname,
 * arch and networkInterfaces (and type, release and cpus only as fallbacks);
 * the other values are deliberately odd so a test notices if one leaks through.
 */
export function fakeOs(overrides: Partial<OsFacts> = {}): OsFacts {
  return {
    hostname: () => "os-hostname",
    arch: () => "arm64",
    platform: () => "linux",
    release: () => "os-release",
    type: () => "Linux",
    cpus: () => [cpu("os cpu model", 0)],
    totalmem: () => 1,
    freemem: () => 1,
    loadavg: () => [9, 9, 9],
    uptime: () => 1,
    networkInterfaces: () => ({}),
    ...overrides,
  };
}

/** Node's view of the Pi 4's interfaces. */
export const PI4_INTERFACES = {
  lo: [LOOPBACK],
  eth0: [
    ipv4("192.168.1.41", "192.168.1.41/24", "dc:a6:32:4b:7e:10"),
    ipv6("fe80::dea6:32ff:fe4b:7e10", "fe80::dea6:32ff:fe4b:7e10/64", "dc:a6:32:4b:7e:10"),
  ],
  wlan0: [ipv4("192.168.1.42", "192.168.1.42/24", "dc:a6:32:4b:7e:11")],
};

/** Node's view of the Zero 2 W's interfaces. */
export const ZERO_INTERFACES = {
  lo: [LOOPBACK],
  wlan0: [ipv4("192.168.1.57", "192.168.1.57/24", "d8:3a:dd:5c:21:9e")],
};

/** Node's view of the x86 machine's interfaces (ifb0/ifb1 have no addresses). */
export const X86_INTERFACES = {
  lo: [LOOPBACK],
  eth0: [
    ipv4("192.0.2.2", "192.0.2.2/24", "02:fc:00:00:00:01"),
    ipv6("fd00::2", "fd00::2/64", "02:fc:00:00:00:01"),
    ipv6("fe80::fc:ff:fe00:1", "fe80::fc:ff:fe00:1/64", "02:fc:00:00:00:01"),
  ],
};

/** Throws (DecodeError naming the field) unless the payload matches its schema. */
export function assertValid<T extends "details" | "vitals">(type: T, payload: MessageMap[T]): void {
  parseEnvelope({ v: 1, type, ts: 0, payload });
}
