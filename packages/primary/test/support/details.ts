/** A node's details for tests: a Pi 4 on Debian, with what a test sets over them. */
import type { MessageMap } from "@picluster/common";

type Details = MessageMap["details"];

export function details(over: Partial<Details> = {}): Details {
  return {
    hostname: "pi-01",
    os: { name: "Debian GNU/Linux", version: "12 (bookworm)" },
    kernel: "6.6.51+rpt-rpi-v8",
    arch: "arm64",
    cpu: { model: "Cortex-A72", cores: 4, minMhz: 600, maxMhz: 1800 },
    memory: { totalBytes: 3_978_000_000, swapBytes: 104_853_504 },
    disks: [{ mount: "/", fs: "ext4", sizeBytes: 31_000_000_000 }],
    interfaces: [{ name: "eth0", mac: "dc:a6:32:00:00:01", addresses: ["192.168.1.21"] }],
    bootTime: 1_700_000_000_000,
    agentVersion: "0.1.0",
    nodeVersion: "v20.20.2",
    board: {
      model: "Raspberry Pi 4 Model B Rev 1.4",
      serial: "1000000012345678",
      revision: "d03114",
    },
    tasks: [
      {
        name: "time",
        description: "",
        builtin: true,
        disruptive: false,
        timeoutMs: 5_000,
        args: [],
      },
    ],
    ...over,
  };
}
