// What one child process costs the process that spawns it, and whether that
// grows with the spawner's size (libuv forks on Linux: the parent's page
// tables are copied into the child and torn down again at exec).
// Run: node --lite-mode bench/probes/spawn-cost.mjs   (the agent's flags)
// Prints, for +0/8/16/32 MiB of heap retained, the CPU (user + system) this
// process spends per spawn of /bin/echo with its output piped (as the agent
// runs a command metric) and with its output ignored.
import { spawn } from "node:child_process";

const N = 100;
const once = (stdio) =>
  new Promise((resolve, reject) => {
    const child = spawn("/bin/echo", ["x", "1"], { stdio, env: { PATH: "/usr/bin:/bin" } });
    child.stdout?.on("data", () => {});
    child.stderr?.on("data", () => {});
    child.on("error", reject);
    child.on("close", resolve);
  });
const msPerSpawn = async (stdio) => {
  for (let i = 0; i < 5; i++) await once(stdio);
  const before = process.cpuUsage();
  for (let i = 0; i < N; i++) await once(stdio);
  const d = process.cpuUsage(before);
  return ((d.user + d.system) / 1000 / N).toFixed(2);
};
const held = [];
for (const extraMiB of [0, 8, 16, 32]) {
  while (held.length < extraMiB * 1024)
    held.push({ n: held.length, s: "x".repeat(900) + held.length });
  const rss = (process.memoryUsage.rss() / 2 ** 20).toFixed(1);
  const piped = await msPerSpawn(["ignore", "pipe", "pipe"]);
  const ignored = await msPerSpawn("ignore");
  console.log(
    `+${extraMiB} MiB of heap, RSS ${rss} MiB: ${piped} ms CPU per spawn piped, ${ignored} ms ignored`,
  );
}
