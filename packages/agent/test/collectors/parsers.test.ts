import assert from "node:assert/strict";
import { test } from "node:test";
import { cpuModel, parseCpuinfo } from "../../src/collectors/cpu.js";
import { parseDiskstats, parseMounts } from "../../src/collectors/disks.js";
import { parseNetDev } from "../../src/collectors/net.js";
import { parseOsRelease } from "../../src/collectors/os-info.js";

test("collectors - mounts keep real filesystems, unescape names and drop shadowed and bind mounts", () => {
  const mounts = parseMounts(
    [
      "/dev/mmcblk0p2 / ext4 rw,noatime 0 0",
      "tmpfs /run tmpfs rw,nosuid,nodev 0 0",
      "overlay /var/lib/docker/overlay2/abc/merged overlay rw,relatime 0 0",
      "/dev/loop0 /snap/core/1 squashfs ro 0 0",
      "/dev/sda1 /media/pi/My\\040Disk exfat rw 0 0",
      "/dev/sdb1 /srv ext4 rw 0 0",
      "/dev/sdc1 /srv xfs rw 0 0",
      "/dev/mmcblk0p2 /var/lib/kubelet ext4 rw 0 0",
      "nas:/export /mnt/nas nfs4 rw 0 0",
      "sshfs#me@host: /mnt/remote fuse.sshfs rw 0 0",
      "",
    ].join("\n"),
  );
  assert.deepEqual(mounts, [
    { source: "/dev/mmcblk0p2", mount: "/", fs: "ext4" },
    { source: "/dev/sda1", mount: "/media/pi/My Disk", fs: "exfat" },
    { source: "/dev/sdc1", mount: "/srv", fs: "xfs" },
    { source: "nas:/export", mount: "/mnt/nas", fs: "nfs4" },
  ]);
});

test("collectors - diskstats count whole devices only, in 512-byte sectors", () => {
  const line = (name: string, read: number, written: number) =>
    ` 259       0 ${name} 10 0 ${read} 0 10 0 ${written} 0 0 0 0 0 0 0 0 0 0`;
  const devices = parseDiskstats(
    [
      "nvme0n1",
      "nvme0n1p1",
      "sda",
      "sda1",
      "mmcblk0boot0",
      "loop0",
      "zram0",
      "ram0",
      "dm-0",
      "md0",
      "xvda",
      "vdb",
    ]
      .map((n) => line(n, 2, 4))
      .join("\n"),
  );
  assert.deepEqual([...devices.keys()], ["nvme0n1", "sda", "xvda", "vdb"]);
  assert.deepEqual(devices.get("sda"), { read: 1024, written: 2048 });
});

test("collectors - net/dev skips the header and loopback and reads rx and tx bytes", () => {
  const counters = parseNetDev(
    [
      "Inter-|   Receive                                                |  Transmit",
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed",
      "    lo:    6414      62    0    0    0     0          0         0     6414      62    0    0    0     0       0          0",
      "  eth0: 181370871    4762    0    0    0     0          0         0   299230    2994    0    0    0     0       0          0",
    ].join("\n"),
  );
  assert.deepEqual([...counters], [["eth0", { rx: 181_370_871, tx: 299_230 }]]);
});

test("collectors - os-release values may be double-quoted with escapes, single-quoted or bare", () => {
  const fields = parseOsRelease(
    ['NAME="Fancy \\"OS\\""', "VERSION_ID='24.04'", "ID=fancy", "# a comment", "BROKEN LINE"].join(
      "\n",
    ),
  );
  assert.deepEqual(
    [...fields],
    [
      ["NAME", 'Fancy "OS"'],
      ["VERSION_ID", "24.04"],
      ["ID", "fancy"],
    ],
  );
});

test("collectors - CPU model maps known ARM parts, else model name, else Hardware", () => {
  const arm = (part: string, implementer = "0x41") =>
    `processor\t: 0\nmodel name\t: ARMv6-compatible processor rev 7 (v6l)\nCPU implementer\t: ${implementer}\nCPU part\t: ${part}\n\nHardware\t: BCM2835\n`;
  assert.equal(cpuModel(parseCpuinfo(arm("0xb76")), []), "ARM1176");
  // ARM1136 (real capture: fixtures/real/procfs-imapx200-arm1136).
  assert.equal(cpuModel(parseCpuinfo(arm("0xb36")), []), "ARM1136");
  assert.equal(cpuModel(parseCpuinfo(arm("0xc07")), []), "Cortex-A7");
  assert.equal(cpuModel(parseCpuinfo(arm("0xd0b")), []), "Cortex-A76");
  // An unknown part, or a part from another implementer, keeps the kernel's model name.
  assert.equal(cpuModel(parseCpuinfo(arm("0xfff")), []), "ARMv6-compatible processor rev 7 (v6l)");
  assert.equal(
    cpuModel(parseCpuinfo(arm("0xd08", "0x51")), []),
    "ARMv6-compatible processor rev 7 (v6l)",
  );
  // big.LITTLE lists each core type once, in order.
  const bigLittle = [0, 1, 2]
    .map(
      (i) =>
        `processor\t: ${i}\nCPU implementer\t: 0x41\nCPU part\t: ${i < 2 ? "0xd05" : "0xd0b"}\n`,
    )
    .join("\n");
  assert.equal(cpuModel(parseCpuinfo(bigLittle), []), "Cortex-A55 + Cortex-A76");
  assert.equal(parseCpuinfo(bigLittle).processors, 3);
  assert.equal(
    cpuModel(parseCpuinfo("processor\t: 0\n\nHardware\t: Allwinner sun8i\n"), []),
    "Allwinner sun8i",
  );
  assert.equal(cpuModel(parseCpuinfo("processor\t: 0\n"), []), "unknown");
});
