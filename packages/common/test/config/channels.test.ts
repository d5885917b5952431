import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { effectiveValues, REDACTED } from "../../src/config/render.js";
import { ConfigError } from "../../src/errors.js";
import { scratchDir } from "../../src/testing/scratch.js";

function loadText(t: { after(fn: () => void): void }, lines: readonly string[]) {
  const dir = scratchDir(t, "picluster-channels-");
  const file = join(dir, "picluster.ini");
  writeFileSync(file, `${lines.join("\n")}\n`);
  return {
    file,
    load: () =>
      loadConfig({ env: {}, configPath: file, paths: { cwd: dir, home: dir, uid: 1000 } }),
  };
}

function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems.map((p) => `${p.where}: ${p.message}`);
  }
  assert.fail("expected a ConfigError");
}

const GOOD = [
  "[channel.hook]", // 1
  "type = webhook",
  "url = https://hooks.example.org/picluster/s3cr3t-path",
  "secret = hmac-key-1",
  'headers = "Authorization: Bearer tok-9" "X-Env: lab"',
  "timeout = 30s",
  "retries = 2",
  "[channel.phone]", // 8
  "type = ntfy",
  "url = https://ntfy.sh/picluster-topic-77",
  "token = tk_ntfy_secret",
  "priority = high",
  "[channel.chat]", // 13
  "type = discord",
  "url = https://discord.com/api/webhooks/1/discord-secret",
  "[channel.team]", // 16
  "type = slack",
  "url = https://hooks.slack.com/services/T0/B0/slack-secret",
  "[channel.mail]", // 19
  "type = email",
  "host = smtp.example.org",
  "user = pi@example.org",
  "password = mail-password-5",
  "from = picluster <pi@example.org>",
  "to = a@example.org, b@example.org c@example.org",
  "ca_file = /etc/ssl/local-ca.pem",
  "[channel.relay]", // 27
  "type = email",
  "host = 127.0.0.1",
  "security = none",
  "from = pi@example.org",
  "to = ops@example.org",
  "[channel.script]", // 33
  "type = command",
  'command = /usr/local/bin/page-me --team "on call"',
];

test("config channels - a [channel.NAME] section of each type reads into its definition with defaults", (t) => {
  const { file, load } = loadText(t, GOOD);
  const { config } = load();
  assert.deepEqual(config.channel, {
    hook: {
      name: "hook",
      type: "webhook",
      url: "https://hooks.example.org/picluster/s3cr3t-path",
      secret: "hmac-key-1",
      headers: { Authorization: "Bearer tok-9", "X-Env": "lab" },
      timeoutMs: 30_000,
      retries: 2,
      where: `${file}:1`,
    },
    phone: {
      name: "phone",
      type: "ntfy",
      url: "https://ntfy.sh/picluster-topic-77",
      token: "tk_ntfy_secret",
      priority: 4,
      timeoutMs: 10_000,
      retries: 5,
      where: `${file}:8`,
    },
    chat: {
      name: "chat",
      type: "discord",
      url: "https://discord.com/api/webhooks/1/discord-secret",
      timeoutMs: 10_000,
      retries: 5,
      where: `${file}:13`,
    },
    team: {
      name: "team",
      type: "slack",
      url: "https://hooks.slack.com/services/T0/B0/slack-secret",
      timeoutMs: 10_000,
      retries: 5,
      where: `${file}:16`,
    },
    mail: {
      name: "mail",
      type: "email",
      host: "smtp.example.org",
      port: 587,
      security: "starttls",
      user: "pi@example.org",
      password: "mail-password-5",
      from: "picluster <pi@example.org>",
      to: ["a@example.org", "b@example.org", "c@example.org"],
      caFile: "/etc/ssl/local-ca.pem",
      timeoutMs: 10_000,
      retries: 5,
      where: `${file}:19`,
    },
    relay: {
      name: "relay",
      type: "email",
      host: "127.0.0.1",
      port: 25,
      security: "none",
      from: "pi@example.org",
      to: ["ops@example.org"],
      timeoutMs: 10_000,
      retries: 5,
      where: `${file}:27`,
    },
    script: {
      name: "script",
      type: "command",
      command: ["/usr/local/bin/page-me", "--team", "on call"],
      timeoutMs: 10_000,
      retries: 5,
      where: `${file}:33`,
    },
  });
});

test("config channels - each mistake is reported with file:line, naming the key, and secrets are not echoed", (t) => {
  const { file, load } = loadText(t, [
    "[channel.a]", // 1
    "url = https://example.org/hook",
    "[channel.b]", // 3
    "type = pager",
    "[channel.c]", // 5
    "type = webhook",
    "secret = abc",
    "[channel.d]", // 8
    "type = webhook",
    "url = ftp://user:hunter2@example.org/x",
    "[channel.e]", // 11
    "type = email",
    "host = smtp.example.org",
    "from = pi@example.org",
    "[channel.f]", // 15
    "type = email",
    "host = smtp.example.org",
    "port = 99999",
    "from = pi@example.org",
    "to = ops@example.org",
    "[channel.g]", // 21
    "type = ntfy",
    "url = https://ntfy.sh/t",
    "tokne = x",
    "[channel.h]", // 25
    "type = slack",
    "url = https://hooks.slack.com/services/x",
    "timeout = 10 parsecs",
    "retries = many",
    "[channel.i]", // 30
    "type = discord",
    "url = https://discord.com/api/webhooks/1/x",
    "password = nope",
    "[channel.j]", // 34
    "type = email",
    "host = 127.0.0.1",
    "security = none",
    "user = me",
    "password = hunter3",
    "from = pi@example.org",
    "to = not-an-address",
    "[channel.k]", // 42
    "type = webhook",
    "url = https://example.org/hook",
    'headers = "Content-Type: text/plain" NoColon',
    "[channel.Bad Name]", // 46
    "type = slack",
    "url = https://hooks.slack.com/services/x",
    "[channel.l]", // 49
    "type = command",
    "command = 'unclosed",
    "",
  ]);
  const problems = problemsOf(load);
  const expect = [
    [1, "[channel.a] has no type (one of webhook, ntfy, discord, slack, email, command)"],
    [
      4,
      '[channel.b] type: expected one of webhook, ntfy, discord, slack, email, command, got "pager"',
    ],
    [5, "[channel.c] has no url (required for a webhook channel)"],
    [10, "[channel.d] url: expected an http:// or https:// URL"],
    [11, "[channel.e] has no to (required for an email channel)"],
    [18, '[channel.f] port: expected an integer from 1 to 65535, got "99999"'],
    [24, '[channel.g] unknown key "tokne" (did you mean token?)'],
    [28, "[channel.h] timeout: expected a duration with a unit"],
    [29, '[channel.h] retries: expected an integer from 0 to 100, got "many"'],
    [33, "[channel.i] password: not a key of a discord channel"],
    [39, "[channel.j] password: security = none would send it in clear text"],
    [41, '[channel.j] to: "not-an-address" is not an email address'],
    [45, "[channel.k] headers: Content-Type is set by picluster itself"],
    [45, '[channel.k] headers: expected "Name: value" words'],
    [46, "a channel name is lowercase"],
    [51, "[channel.l] command:"],
  ] as const;
  for (const [line, text] of expect) {
    assert.ok(
      problems.some((p) => p.startsWith(`${file}:${line}: `) && p.includes(text)),
      `line ${line}: ${text}\n${problems.join("\n")}`,
    );
  }
  assert.equal(problems.length, expect.length, problems.join("\n"));
  const all = problems.join("\n");
  assert.ok(!all.includes("hunter2") && !all.includes("hunter3"), "no secret in a problem");
});

test("config channels - config show lists every channel key with its line; URLs, tokens, passwords and secrets are redacted", (t) => {
  const { file, load } = loadText(t, GOOD);
  const values = effectiveValues(load());
  const get = (section: string, key: string) =>
    values.find((v) => v.section === section && v.key === key);
  assert.deepEqual(get("channel.hook", "url"), {
    section: "channel.hook",
    key: "url",
    value: REDACTED,
    source: `${file}:3`,
  });
  for (const [section, key] of [
    ["channel.hook", "secret"],
    ["channel.hook", "headers"],
    ["channel.phone", "url"],
    ["channel.phone", "token"],
    ["channel.chat", "url"],
    ["channel.team", "url"],
    ["channel.mail", "password"],
  ] as const)
    assert.equal(get(section, key)?.value, REDACTED, `${section} ${key}`);
  assert.deepEqual(get("channel.mail", "port"), {
    section: "channel.mail",
    key: "port",
    value: "587",
    source: "default",
  });
  assert.equal(get("channel.mail", "to")?.value, "a@example.org, b@example.org, c@example.org");
  assert.equal(get("channel.phone", "priority")?.value, "4");
  assert.equal(get("channel.hook", "timeout")?.value, "30s");
  assert.equal(get("channel.script", "command")?.value, "/usr/local/bin/page-me --team 'on call'");
  const shown = JSON.stringify(values);
  for (const secret of [
    "s3cr3t-path",
    "hmac-key-1",
    "tok-9",
    "picluster-topic-77",
    "tk_ntfy_secret",
    "discord-secret",
    "slack-secret",
    "mail-password-5",
  ])
    assert.ok(!shown.includes(secret), `${secret} is not shown`);
});

test("config channels - one name rule for a channel and for the rules that name it: dots are fine in both, a bad name is refused in both with file:line", (t) => {
  const good = loadText(t, [
    "[alerts]",
    "channels = ops.pager",
    "[channel.ops.pager]",
    "type = ntfy",
    "url = https://ntfy.sh/ops-pager",
    "[alert.node_down]",
    "channels = ops.pager, none",
  ]);
  const { config } = good.load();
  assert.deepEqual(Object.keys(config.channel), ["ops.pager"]);
  assert.deepEqual(config.alert.node_down?.channels, ["ops.pager", "none"]);
  assert.equal(config.alerts.channels, "ops.pager");

  const { file, load } = loadText(t, [
    "[channel.Ops.Pager]", // 1
    "type = ntfy",
    "url = https://ntfy.sh/ops-pager",
    "[alert.node_down]", // 4
    "channels = Ops.Pager",
  ]);
  const problems = problemsOf(load);
  const rule = "lowercase letters, digits, '.', '_' or '-', starting with a letter";
  const expect = [
    [1, `[channel.Ops.Pager]: a channel name is ${rule}`],
    [5, `[alert.node_down] channels: "Ops.Pager" is not a channel name (${rule})`],
  ] as const;
  for (const [line, text] of expect) {
    assert.ok(
      problems.some((p) => p.startsWith(`${file}:${line}: `) && p.includes(text)),
      `line ${line}: ${text}\n${problems.join("\n")}`,
    );
  }
  assert.equal(problems.length, expect.length, problems.join("\n"));
});
