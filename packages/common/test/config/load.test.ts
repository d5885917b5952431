import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { formatHostPort, parseHostPort } from "../../src/config/addresses.js";
import {
  describeSource,
  type LoadedConfig,
  type LoadOptions,
  loadConfig,
} from "../../src/config/load.js";
import { effectiveValues, REDACTED } from "../../src/config/render.js";
import { ConfigError } from "../../src/errors.js";
import { scratchDir } from "../../src/testing/scratch.js";

const TUTORIAL_CFG = new URL("../../../test/fixtures/rpicluster.cfg", import.meta.url).pathname;

/** A scratch working directory, removed after the test. */
function workdir(t: { after(fn: () => void): void }, files: Record<string, string> = {}): string {
  const dir = scratchDir(t, "picluster-cfg-");
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function load(cwd: string, opts: Partial<LoadOptions> = {}): LoadedConfig {
  return loadConfig({ env: {}, paths: { cwd, home: cwd, uid: 1000 }, ...opts });
}

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems.map((p) => `${p.where}: ${p.message}`);
  }
  assert.fail("expected a ConfigError");
}

test("config - no file anywhere means every default, each marked as such", (t) => {
  const loaded = load(workdir(t));
  assert.equal(loaded.file, undefined);
  assert.equal(loaded.config.primary.port, 12345);
  assert.equal(loaded.config.http.port, 8123);
  assert.equal(loaded.config.http.host, "127.0.0.1");
  assert.equal(loaded.config.primary.heartbeat_interval, 1000);
  assert.equal(loaded.config.primary.max_frame_bytes, 1024 * 1024);
  assert.equal(loaded.config.agent.tls, true);
  assert.ok(Object.values(loaded.sources).every((s) => s.kind === "default"));
});

test("config - precedence is defaults < file < environment < flags, and each value knows its source", (t) => {
  const cwd = workdir(t, {
    "picluster.ini":
      "[primary]\nport = 2000\nvitals_interval = 30s\nheartbeat_interval = 2s\n\n[http]\nport: 2001\n",
  });
  const loaded = load(cwd, {
    env: { PICLUSTER_PRIMARY_PORT: "3000", PICLUSTER_HTTP_PORT: "3001", HOME: "/x" },
    flags: { "http.port": "4001" },
  });
  assert.equal(loaded.file, join(cwd, "picluster.ini"));
  assert.equal(loaded.config.primary.vitals_interval, 30_000);
  assert.equal(loaded.config.primary.port, 3000);
  assert.equal(loaded.config.http.port, 4001);
  assert.equal(
    describeSource(loaded.sources["primary.vitals_interval"] ?? { kind: "default" }),
    `${join(cwd, "picluster.ini")}:3`,
  );
  assert.equal(
    describeSource(loaded.sources["primary.port"] ?? { kind: "default" }),
    "env PICLUSTER_PRIMARY_PORT",
  );
  assert.equal(
    describeSource(loaded.sources["http.port"] ?? { kind: "default" }),
    "flag --http-port",
  );
});

test("config - file search: --config, then $PICLUSTER_CONFIG, then ./picluster.ini", (t) => {
  const cwd = workdir(t, {
    "picluster.ini": "[node]\nname = local\n",
    "env.ini": "[node]\nname = from-env\n",
    "flag.ini": "[node]\nname = from-flag\n",
  });
  assert.equal(load(cwd).config.node.name, "local");
  assert.equal(load(cwd, { env: { PICLUSTER_CONFIG: "env.ini" } }).config.node.name, "from-env");
  assert.equal(
    load(cwd, { env: { PICLUSTER_CONFIG: "env.ini" }, configPath: "flag.ini" }).config.node.name,
    "from-flag",
  );
  assert.deepEqual(
    problems(() => load(cwd, { configPath: "missing.ini" })),
    [`flag --config: no such file: ${join(cwd, "missing.ini")}`],
  );
  assert.deepEqual(
    problems(() => load(cwd, { env: { PICLUSTER_CONFIG: "gone.ini" } })),
    [`env PICLUSTER_CONFIG: no such file: ${join(cwd, "gone.ini")}`],
  );
});

test("config - every bad value is reported at once with file, line, section, key, value and what was expected", (t) => {
  const cwd = workdir(t, {
    "picluster.ini": [
      "[primary]",
      "port = 12x45",
      "heartbeat_interval = 10",
      "max_frame_bytes = 3 parsecs",
      "[agent]",
      "tls = maybe",
      "[log]",
      "level = loud",
      "[node]",
      "labels = rack=a, bad label=1",
    ].join("\n"),
  });
  const file = join(cwd, "picluster.ini");
  assert.deepEqual(
    problems(() => load(cwd)),
    [
      `${file}:10: [node] labels: expected labels as key=value pairs separated by commas; "bad label" is not a valid label name, got "rack=a, bad label=1"`,
      `${file}:6: [agent] tls: expected a boolean: on/off, true/false, yes/no or 1/0, got "maybe"`,
      `${file}:2: [primary] port: expected an integer from 0 to 65535, got "12x45"`,
      `${file}:3: [primary] heartbeat_interval: expected a duration with a unit, like 500ms, 10s, 5m or 1h, from 100ms to 1m, got "10"`,
      `${file}:4: [primary] max_frame_bytes: expected a size like 512KB, 10MB or 1GB, from 1KB to 64MB, got "3 parsecs"`,
      `${file}:8: [log] level: expected one of trace, debug, info, warn, error, fatal, got "loud"`,
    ],
  );
});

test("config - syntax errors name the line: a key before any section, a duplicate key, a line without a delimiter", (t) => {
  const cwd = workdir(t, {
    "picluster.ini": "port = 1\n[primary]\nport = 2\nport = 3\njust words\n",
  });
  const file = join(cwd, "picluster.ini");
  const got = problems(() => load(cwd));
  assert.equal(got.length, 3);
  assert.match(got[0] ?? "", new RegExp(`^${file}:1: expected a \\[section\\] header`));
  assert.equal(got[1], `${file}:4: key "port" in [primary] already set at line 3`);
  assert.match(got[2] ?? "", new RegExp(`^${file}:5: expected "key = value"`));
});

test("config - an unknown key or section is a warning naming file:line and the closest known key", (t) => {
  const cwd = workdir(t, {
    "picluster.ini": "[primary]\nprot = 1\n\n[agnet]\nprimary_host = x\n\n[http]\nzzzzzz = 1\n",
  });
  const file = join(cwd, "picluster.ini");
  const loaded = load(cwd);
  assert.deepEqual(
    loaded.notices.map((n) => `${n.kind} ${n.where}: ${n.message}`),
    [
      `unknown_key ${file}:2: unknown key "prot" in [primary], ignored (did you mean [primary] port?)`,
      `unknown_section ${file}:4: unknown section [agnet], its keys are ignored (did you mean [agent]?)`,
      `unknown_key ${file}:8: unknown key "zzzzzz" in [http], ignored`,
    ],
  );
  assert.equal(loaded.config.primary.port, 12345, "an ignored key changes nothing");
});

test("config - a misspelt tutorial key is told its tutorial name and what that is read as", (t) => {
  const cwd = workdir(t, {
    "picluster.ini": "[master]\nsocket_prot = 5000\n\n[slave]\nmaster_pi = 10.0.0.1\n",
  });
  const file = join(cwd, "picluster.ini");
  assert.deepEqual(
    load(cwd).notices.map((n) => `${n.where}: ${n.message}`),
    [
      `${file}:2: unknown key "socket_prot" in [master], ignored (did you mean [master] socket_port, read as [primary] port?)`,
      `${file}:5: unknown key "master_pi" in [slave], ignored (did you mean [slave] master_ip, read as [agent] primary_host?)`,
    ],
  );
});

test("config - unknown PICLUSTER_ variables and flags are named with the closest real one", (t) => {
  const cwd = workdir(t);
  const loaded = load(cwd, { env: { PICLUSTER_PRIMRY_PORT: "1" } });
  assert.deepEqual(
    loaded.notices.map((n) => n.message),
    ["not a picluster setting, ignored (did you mean PICLUSTER_PRIMARY_PORT?)"],
  );
  assert.deepEqual(
    problems(() => load(cwd, { flags: { "http.prot": "1" } })),
    ["flag --http-prot: unknown setting (did you mean --http-port?)"],
  );
});

test("config - [DEFAULT] values and %(name)s interpolation work as in ConfigParser", (t) => {
  const cwd = workdir(t, {
    "picluster.ini": [
      "[DEFAULT]",
      "base = /srv/picluster",
      "level = debug",
      "",
      "[node]",
      "data_dir = %(base)s/data",
      "labels = path=100%%",
      "",
      "[log]",
      "dir: %(data_dir)s/log",
      "data_dir = /var/tmp",
    ].join("\n"),
  });
  const loaded = load(cwd);
  assert.equal(loaded.config.node.data_dir, "/srv/picluster/data");
  assert.deepEqual(loaded.config.node.labels, { path: "100%" });
  assert.equal(
    loaded.config.log.dir,
    "/var/tmp/log",
    "references resolve in the same section first",
  );
  assert.equal(
    loaded.config.log.level,
    "debug",
    "a DEFAULT key applies to every section that has it",
  );
  assert.ok(
    !loaded.notices.some((n) => n.message.includes("base")),
    "a DEFAULT helper key is not an unknown key",
  );
});

test("config - an interpolation error names the file and line of the key", (t) => {
  const cwd = workdir(t, {
    "picluster.ini": "[node]\nname = n1\ndata_dir = %(nowhere)s/x\n[http]\ntoken = 50%\n",
  });
  const file = join(cwd, "picluster.ini");
  assert.deepEqual(
    problems(() => load(cwd)),
    [
      `${file}:3: [node] "data_dir": %(nowhere)s refers to a key that is not in [node] or [DEFAULT]`,
      `${file}:5: [http] "token": "%" must be followed by "%" or "(", found "%"; write %% for a literal %`,
    ],
  );
});

test("config - the tutorial's rpicluster.cfg loads, its old names mapped with one deprecation line each", () => {
  const loaded = load("/", { configPath: TUTORIAL_CFG });
  assert.equal(loaded.config.primary.port, 12345);
  assert.equal(loaded.config.primary.bind_host, "", "empty socket_bind_ip means every interface");
  assert.deepEqual(loaded.config.agent.primary_host, ["127.0.0.1"]);
  assert.equal(loaded.config.agent.primary_port, 12345);
  assert.equal(loaded.config.http.port, 8123);
  assert.equal(loaded.config.http.host, "localhost");
  const lines = loaded.notices.map((n) => `${n.where.replace(/^.*\//, "")} ${n.kind}`);
  assert.deepEqual(lines, [
    "rpicluster.cfg:2 obsolete",
    "rpicluster.cfg:5 deprecated",
    "rpicluster.cfg:6 deprecated",
    "rpicluster.cfg:7 obsolete",
    "rpicluster.cfg:8 obsolete",
    "rpicluster.cfg:9 obsolete",
    "rpicluster.cfg:12 deprecated",
    "rpicluster.cfg:13 deprecated",
    "rpicluster.cfg:16 deprecated",
    "rpicluster.cfg:17 deprecated",
  ]);
  assert.match(
    loaded.notices[1]?.message ?? "",
    /\[primary\] socket_port is deprecated, read as \[primary\] port/,
  );
});

test("config - a key's own name wins over its old alias; two aliases that disagree are an error", (t) => {
  const cwd = workdir(t, {
    "a.ini": "[primary]\nport = 7000\nsocket_port = 7001\n",
    "b.ini": "[master]\nsocket_port = 7000\n[primary]\nsocket_port = 7001\n",
  });
  const a = load(cwd, { configPath: "a.ini" });
  assert.equal(a.config.primary.port, 7000);
  assert.ok(
    a.notices.some(
      (n) => n.kind === "shadowed" && n.message.includes("[primary] port is set at line 2"),
    ),
  );
  const [conflict] = problems(() => load(cwd, { configPath: "b.ini" }));
  assert.match(
    conflict ?? "",
    /b\.ini:4: \[primary\] socket_port = "7001" conflicts with \[master\] socket_port = "7000" at line 2/,
  );
});

test("config - liveness thresholds must be ordered: heartbeat < suspect_after < dead_after", (t) => {
  const cwd = workdir(t, {
    "picluster.ini": "[primary]\nheartbeat_interval = 5s\nsuspect_after = 4s\ndead_after = 4s\n",
  });
  const got = problems(() => load(cwd));
  assert.equal(got.length, 2);
  assert.match(
    got[0] ?? "",
    /:3: \[primary\] suspect_after \(4000 ms\) must be longer than heartbeat_interval \(5000 ms, from .*:2\)/,
  );
  assert.match(
    got[1] ?? "",
    /:4: \[primary\] dead_after \(4000 ms\) must be longer than suspect_after/,
  );
});

test("config - secrets are redacted in effective values and never echoed in errors", (t) => {
  const cwd = workdir(t, { "picluster.ini": "[http]\ntoken = hunter2\n" });
  const values = effectiveValues(load(cwd));
  assert.equal(values.find((v) => v.key === "token")?.value, REDACTED);
  assert.ok(!JSON.stringify(values).includes("hunter2"));
  assert.equal(values.find((v) => v.key === "port" && v.section === "http")?.value, "8123");
});

test("config - a byte-order mark and CRLF line ends are accepted", (t) => {
  const cwd = workdir(t, { "picluster.ini": "\uFEFF[node]\r\nname = pi-01\r\n" });
  assert.equal(load(cwd).config.node.name, "pi-01");
});

test("config - [heartbeat]: off by default; the URL must be http(s), is redacted and never echoed; env and flags reach it", (t) => {
  const off = load(workdir(t)).config.heartbeat;
  assert.deepEqual(off, { url: "", method: "post", interval: 60_000, timeout: 10_000 });

  const url = "https://hc-ping.com/5f1c3e2a-secret-uuid";
  const cwd = workdir(t, {
    "picluster.ini": `[heartbeat]\nurl = ${url}\ninterval = 30s\nmethod = get\n`,
  });
  const loaded = load(cwd, { env: { PICLUSTER_HEARTBEAT_TIMEOUT: "5s" } });
  assert.deepEqual(loaded.config.heartbeat, {
    url,
    method: "get",
    interval: 30_000,
    timeout: 5_000,
  });
  const values = effectiveValues(loaded);
  assert.equal(values.find((v) => v.section === "heartbeat" && v.key === "url")?.value, REDACTED);
  assert.ok(!JSON.stringify(values).includes("secret-uuid"));

  const bad = workdir(t, {
    "picluster.ini": "[heartbeat]\nurl = ftp://hc-ping.com/secret-uuid\ninterval = 10ms\n",
  });
  const found = problems(() => load(bad));
  assert.equal(found.length, 2, found.join("\n"));
  assert.match(
    found[0] ?? "",
    /picluster\.ini:2: .*url.*an http:\/\/ or https:\/\/ URL \(or empty\)/,
  );
  assert.match(found[1] ?? "", /picluster\.ini:3: .*interval.*from 1s to 1d/);
  assert.ok(!found.join("\n").includes("secret-uuid"), "the URL is not echoed");
  assert.deepEqual(
    load(workdir(t), { flags: { "heartbeat.url": "http://kuma.lan:3001/api/push/x" } }).config
      .heartbeat.url,
    "http://kuma.lan:3001/api/push/x",
  );
});

test("config - several primaries for an agent: host or host:port each, a bad port named with where it was written", (t) => {
  const cwd = workdir(t, {
    "picluster.ini": "[agent]\nprimary_host = pi1, 10.0.0.2:7000, [fd00::3]:7001, fd00::4\n",
  });
  const loaded = load(cwd);
  const hosts = loaded.config.agent.primary_host;
  assert.deepEqual(
    hosts.map((h) => parseHostPort(h, 12345)),
    [
      { host: "pi1", port: 12345 },
      { host: "10.0.0.2", port: 7000 },
      { host: "fd00::3", port: 7001 },
      { host: "fd00::4", port: 12345 },
    ],
  );
  assert.deepEqual(
    hosts.map((h) => formatHostPort(parseHostPort(h, 1))),
    ["pi1:1", "10.0.0.2:7000", "[fd00::3]:7001", "[fd00::4]:1"],
  );
  const bad = problems(() =>
    load(workdir(t, { "picluster.ini": "[agent]\nprimary_host = pi1, pi2:99999\n" })),
  );
  assert.equal(bad.length, 1);
  assert.match(bad[0] as string, /picluster\.ini:2.*"pi2:99999" is not/);
  assert.match(bad[0] as string, /1–65535/);
});
