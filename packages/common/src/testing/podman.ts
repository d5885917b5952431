/**
 * A real Docker-compatible API for the containers tests and the agent's
 * footprint bench: Debian's podman
 * (installed by .ci/run with runc) serving `podman system service` on a
 * socket of the test's own, with its storage, config and containers in a
 * scratch directory. Images cannot be pulled here (no registry), so the one
 * image is imported from a root filesystem holding this machine's
 * /bin/sleep and the libraries it links.
 *
 * This kernel's cgroups are hybrid (v1 controllers beside a v2 mount), which
 * crun refuses: containers run with runc. The default RLIMIT_NOFILE podman
 * asks for is above this sandbox's hard limit: the config sets lower ones.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { waitFor } from "./next-event.js";

/** What startPodman needs of a test (node:test's context has both). */
export interface PodmanContext {
  after(fn: () => void | Promise<void>): void;
  diagnostic?(message: string): void;
}

/** Why podman cannot run here, or false. */
export const NO_PODMAN =
  existsSync("/usr/bin/podman") && existsSync("/usr/sbin/runc")
    ? false
    : "no /usr/bin/podman or /usr/sbin/runc: .ci/run installs Debian's podman and runc";

export const IMAGE = "localhost/picluster-test:1";

export interface Podman {
  socket: string;
  /** Run podman with this test's storage and config. */
  run(args: string[]): string;
}

export async function startPodman(t: PodmanContext): Promise<Podman> {
  // Not scratchDir: this directory goes only after the containers and the service are gone.
  const dir = mkdtempSync(join(tmpdir(), "picluster-podman-"));
  const conf = join(dir, "containers.conf");
  writeFileSync(
    conf,
    [
      "[containers]",
      'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
      'log_driver = "k8s-file"',
      "[engine]",
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `tmp_dir = "${join(dir, "tmp")}"`,
      "",
    ].join("\n"),
  );
  const env = { ...process.env, CONTAINERS_CONF: conf };
  const base = [
    "--root",
    join(dir, "root"),
    "--runroot",
    join(dir, "runroot"),
    "--storage-driver",
    "vfs",
  ];
  const run = (args: string[]) =>
    execFileSync("/usr/bin/podman", [...base, ...args], {
      env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });

  // The image: /bin/sleep and what it links, nothing else.
  const rootfs = join(dir, "rootfs");
  const files = ["/bin/sleep"];
  const ldd = spawnSync("ldd", ["/bin/sleep"], { encoding: "utf8" }).stdout;
  for (const m of ldd.matchAll(/(\/[^\s]+\.so[^\s]*)/g)) files.push(m[1] as string);
  for (const f of files) {
    mkdirSync(join(rootfs, dirname(f)), { recursive: true });
    copyFileSync(f, join(rootfs, f));
  }
  execFileSync("tar", ["-C", rootfs, "-cf", join(dir, "rootfs.tar"), "."]);
  run(["import", join(dir, "rootfs.tar"), IMAGE]);

  const socket = join(dir, "podman.sock");
  const service: ChildProcess = spawn(
    "/usr/bin/podman",
    [...base, "system", "service", "--time=0", `unix://${socket}`],
    { env, stdio: "ignore" },
  );
  // A process that exits before its cleanup runs (a bench stopped with Ctrl-C)
  // leaves no container or service behind: they would go on using the machine.
  const onExit = () => {
    spawnSync("/usr/bin/podman", [...base, "rm", "-f", "-a", "-t", "0"], { env, stdio: "ignore" });
    service.kill("SIGKILL");
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // Its cleanup processes still write there: a temporary directory, left to the system.
    }
  };
  process.once("exit", onExit);
  t.after(async () => {
    process.off("exit", onExit);
    // Containers first (their conmon processes), then the service, then the
    // files: podman's cleanup processes write under root/ for a moment after.
    spawnSync("/usr/bin/podman", [...base, "rm", "-f", "-a", "-t", "0"], { env, stdio: "ignore" });
    if (service.exitCode === null && service.signalCode === null) {
      const exited = new Promise((r) => service.once("exit", r));
      service.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
      service.kill("SIGKILL");
    }
    for (let attempt = 1; ; attempt++) {
      try {
        rmSync(dir, { recursive: true, force: true });
        return;
      } catch (err) {
        if (attempt === 20) {
          t.diagnostic?.(`scratch directory ${dir} not removed: ${String(err)}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  });
  await waitFor(() => existsSync(socket), "podman's API socket", 10_000, 50);
  return { socket, run };
}
