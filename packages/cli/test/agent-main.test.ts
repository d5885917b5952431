import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { plainAgentOptions } from "../src/agent-main.js";

const BUNDLE = new URL("../agent-bundle.cjs", import.meta.url).pathname;

test("agent-main - a plain `agent` line is parsed without commander, as commander names the options", () => {
  assert.deepEqual(plainAgentOptions(["agent"]), {});
  assert.deepEqual(plainAgentOptions(["agent", "--config", "/etc/picluster/picluster.ini"]), {
    config: "/etc/picluster/picluster.ini",
  });
  assert.deepEqual(
    plainAgentOptions([
      "--config=/a.ini",
      "agent",
      "--agent-primary-host",
      "10.0.0.1",
      "--node-name=pi-1",
      "--config",
      "/b.ini",
    ]),
    { config: "/b.ini", agentPrimaryHost: "10.0.0.1", nodeName: "pi-1" },
  );
});

test("agent-main - anything else goes to commander: help, other commands, unknown flags, missing values", () => {
  for (const argv of [
    [],
    ["--help"],
    ["agent", "--help"],
    ["agent", "-h"],
    ["config", "show"],
    ["agent", "extra"],
    ["agent", "--bogus", "1"],
    ["agent", "--config"],
    ["agent", "--config", "--node-name"],
    ["service", "install", "agent"],
  ]) {
    assert.equal(plainAgentOptions(argv), undefined, argv.join(" "));
  }
});

test("agent-main - the installed bundle still answers help and refuses a bad flag by name", () => {
  const help = spawnSync(process.execPath, [BUNDLE, "agent", "--help"], { encoding: "utf8" });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /run the agent/);
  const bad = spawnSync(process.execPath, [BUNDLE, "agent", "--bogus", "1"], { encoding: "utf8" });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown option '--bogus'/);
  const missing = spawnSync(process.execPath, [BUNDLE, "agent", "--config", "/nonexistent/x.ini"], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /\/nonexistent\/x\.ini/);
});
