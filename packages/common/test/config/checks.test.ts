import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { iniFile } from "../support/ini-file.js";

test("config checks - [check.NAME] sections: one of unit, http, tcp, ping, with an interval and a timeout", (t) => {
  const { load: read, file } = iniFile(
    t,
    [
      "[check.web]",
      "http = https://example.org/healthz",
      "status = 200-299",
      "body = ok",
      "cert_days = 30",
      "interval = 1m",
      "[check.nginx]",
      "unit = nginx.service",
      "[check.db]",
      "tcp = [fd00::5]:5432",
      "interval = 2s",
      "[check.router]",
      "ping = 192.168.1.1",
      "",
    ].join("\n"),
  );
  const { config } = read();
  assert.deepEqual(config.check.web, {
    name: "web",
    kind: "http",
    target: "https://example.org/healthz",
    intervalMs: 60_000,
    timeoutMs: 5_000,
    status: [200, 299],
    body: "ok",
    certDays: 30,
    where: `${file}:1`,
  });
  assert.equal(config.check.nginx?.kind, "unit");
  assert.equal(config.check.nginx?.intervalMs, 30_000);
  assert.deepEqual([config.check.db?.kind, config.check.db?.target], ["tcp", "[fd00::5]:5432"]);
  assert.equal(config.check.db?.timeoutMs, 2_000, "no longer than the interval");
  assert.equal(config.check.router?.kind, "ping");
});

test("config checks - every mistake named with its file and line", (t) => {
  const { load: read, file } = iniFile(
    t,
    [
      "[check.Web]",
      "tcp = x:1",
      "[check.two]",
      "tcp = a:1",
      "ping = a",
      "[check.none]",
      "interval = 5s",
      "[check.badurl]",
      "http = ftp://example.org/",
      "[check.port]",
      "tcp = example.org:99999",
      "body = ok",
      "[check.status]",
      "http = http://x/",
      "status = 299-200",
      "timeout = 1m",
      "",
    ].join("\n"),
  );
  assert.throws(read, (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(
      err.problems.map((p) => `${p.where}: ${p.message}`),
      [
        `${file}:1: [check.Web]: a check name is lowercase letters, digits, '_' or '-', starting with a letter (64 at most)`,
        `${file}:3: [check.two] sets tcp and ping: one check per section`,
        `${file}:6: [check.none] says nothing to check: set one of unit, http, tcp, ping`,
        `${file}:9: [check.badurl] http: expected an http:// or https:// URL, got "ftp://example.org/"`,
        `${file}:11: [check.port] tcp: expected HOST:PORT, got "example.org:99999"`,
        `${file}:12: [check.port] body: only for an http check`,
        `${file}:15: [check.status] status: expected a status or a range such as 200-299, got "299-200"`,
        `${file}:16: [check.status] timeout: 1m is longer than the interval (30s)`,
      ],
    );
    return true;
  });
});
