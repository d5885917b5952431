import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { scratchDir } from "@picluster/common/testing";
import type { CliIo } from "../src/io.js";
import { main } from "../src/main.js";

function io(): CliIo & { text(): { out: string; err: string } } {
  let out = "";
  let err = "";
  return {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    env: {},
    cwd: tmpdir(),
    isTty: false,
    text: () => ({ out, err }),
  };
}

test("cli service - --dry-run shows the systemd unit and the exact commands, and changes nothing", async () => {
  const c = io();
  const code = await main(
    [
      "service",
      "install",
      "agent",
      "--dry-run",
      "--json",
      "--config",
      "/etc/picluster/node.ini",
      "--unit-dir",
      "/nonexistent/units",
    ],
    c,
  );
  assert.equal(code, 0, c.text().err);
  const r = JSON.parse(c.text().out) as {
    dryRun: boolean;
    unitFile: string;
    unit: string;
    commands: string[][];
  };
  assert.equal(r.unitFile, "/nonexistent/units/picluster-agent.service");
  // The unit runs the very script that installed it (bin/picluster.js, or a node's agent bundle).
  assert.ok(
    r.unit.includes(
      `\nExecStart=${process.execPath} --lite-mode ${resolve(process.argv[1] ?? "")} agent --config /etc/picluster/node.ini\n`,
    ),
    r.unit,
  );
  assert.match(r.unit, /^Restart=on-failure$/m);
  assert.match(r.unit, /^User=picluster$/m);
  assert.match(r.unit, /^WantedBy=multi-user\.target$/m);
  assert.deepEqual(r.commands, [
    ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "picluster"],
    ["systemctl", "daemon-reload"],
    ["systemctl", "enable", "--now", "picluster-agent.service"],
  ]);
});

test("cli service - a bad role or user name is bad usage (exit 2) with the reason", async () => {
  const a = io();
  assert.equal(await main(["service", "install", "database", "--dry-run"], a), 2);
  assert.equal(a.text().err, 'error: role: expected agent or primary, got "database"\n');
  const b = io();
  assert.equal(
    await main(["service", "install", "primary", "--dry-run", "--user", "root; rm -rf /"], b),
    2,
  );
  assert.match(b.text().err, /--user: expected a system user name/);
});

test("cli service - warns when the config the unit names is missing, or where its sandbox hides it", (t) => {
  const BIN = new URL("../../bin/picluster.js", import.meta.url).pathname;
  const install = (config: string) =>
    spawnSync(
      process.execPath,
      [BIN, "service", "install", "agent", "--dry-run", "--config", config],
      { encoding: "utf8" },
    );
  const dir = scratchDir(t, "picluster-service-");
  const inTmp = join(dir, "picluster.ini");
  writeFileSync(inTmp, "[agent]\nprimary_host = 10.0.0.1\n");

  const hidden = spawnSync(
    process.execPath,
    [BIN, "service", "install", "agent", "--dry-run", "--json", "--config", inTmp],
    { encoding: "utf8" },
  );
  assert.equal(hidden.status, 0, hidden.stderr);
  const warning = `${inTmp} will not be readable by the service: PrivateTmp=yes gives the service an empty /tmp of its own; move it to /etc/picluster/ and pass that path to --config`;
  assert.equal(hidden.stderr, `warning: ${warning}\n`);
  assert.deepEqual((JSON.parse(hidden.stdout) as { warnings: string[] }).warnings, [warning]);

  const home = install("/home/someone/picluster.ini");
  assert.match(
    home.stderr,
    /^warning: \/home\/someone\/picluster\.ini does not exist: the service cannot start until it does/,
  );
  assert.equal(home.status, 0, "a dry run still shows the unit");
  assert.match(home.stdout, /^# would write /);

  // Any file outside /tmp and /home will do (the repository may be in a home directory).
  const fine = install("/etc/passwd");
  assert.equal(fine.stderr, "", "a file outside /tmp and /home: nothing to say");
});
