import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import {
  type ChannelDef,
  createLogger,
  type EmailChannelDef,
  type Logger,
} from "@picluster/common";
import { deadline, processAlive, scratchDir, waitFor } from "@picluster/common/testing";
import {
  type AlertMessage,
  backoffMs,
  type Channel,
  createChannel,
  Deliverer,
  type DeliveryHooks,
  DISCORD_MAX_CHARS,
} from "@picluster/primary";
import { type Answer, type ReceivedRequest, startReceiver } from "./support/http-receiver.js";
import { smtpUnavailable, startSmtpServers } from "./support/smtp-server.js";

type After = { after(fn: () => Promise<void> | void): void };

function capturedLog(): {
  log: Logger;
  lines: () => Array<Record<string, unknown>>;
  raw: string[];
} {
  const raw: string[] = [];
  const log = createLogger({ write: (line) => raw.push(line) }, { level: "debug" });
  return {
    log,
    raw,
    lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const BASE = { timeoutMs: 10_000, retries: 0, where: "test:1" };

function message(over: Partial<AlertMessage> = {}): AlertMessage {
  return {
    status: "firing",
    rule: "node_down",
    severity: "critical",
    title: "pi-3 is down",
    text: "pi-3 has sent nothing since 12:00:05.\nCheck its power and network.",
    nodes: [{ id: "n-3", name: "pi-3", value: null }],
    at: Date.UTC(2025, 0, 2, 12, 0, 5),
    url: "http://primary.lan:8123/nodes/n-3",
    ...over,
  };
}

function channel(def: Record<string, unknown> & { name: string; type: string }, log?: Logger) {
  return createChannel({ ...BASE, ...def } as ChannelDef, {
    log: log ?? capturedLog().log,
  });
}

function send(ch: Channel, msg: AlertMessage): Promise<void> {
  return ch.send(msg, AbortSignal.timeout(10_000));
}

/** Hook calls in order, as data. */
function recordHooks(): { hooks: DeliveryHooks; events: Array<Record<string, unknown>> } {
  const events: Array<Record<string, unknown>> = [];
  return {
    events,
    hooks: {
      onDelivered: (channel, msg, attempts, ms) =>
        events.push({ kind: "delivered", channel, title: msg.title, attempts, ms }),
      onAttemptFailed: (channel, msg, attempt, error) =>
        events.push({ kind: "failed", channel, title: msg.title, attempt, error: error.message }),
      onGaveUp: (channel, msg, attempts, error) =>
        events.push({ kind: "gaveUp", channel, title: msg.title, attempts, error: error.message }),
      onDropped: (channel, msg, capacity) =>
        events.push({ kind: "dropped", channel, title: msg.title, capacity }),
    },
  };
}

function deliverer(t: After, channels: Channel[], hooks: DeliveryHooks, log?: Logger) {
  const d = new Deliverer({
    channels,
    hooks,
    log: log ?? capturedLog().log,
    backoffBaseMs: 20,
  });
  t.after(() => d.close());
  return d;
}

/** A port that was free a moment ago and has nothing listening now. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---- senders, one per type, against real receivers ----

test("alert channels - webhook: the message as JSON version 1, signed with HMAC-SHA256 of the exact body", async (t) => {
  const rx = await startReceiver(t);
  const ch = channel({
    name: "hook",
    type: "webhook",
    url: `${rx.url}/hooks/abc?x=1`,
    secret: "shared-secret",
    headers: { "X-Env": "lab" },
  });
  const msg = message();
  await send(ch, msg);
  assert.equal(rx.requests.length, 1);
  const req = rx.requests[0] as ReceivedRequest;
  assert.equal(req.method, "POST");
  assert.equal(req.path, "/hooks/abc?x=1");
  assert.equal(req.headers["content-type"], "application/json");
  assert.equal(req.headers["x-env"], "lab");
  assert.deepEqual(JSON.parse(req.body), { version: 1, ...msg });

  // What a receiver does: HMAC the raw body with the shared secret, compare in constant time.
  const verify = (secret: string) => {
    const expected = Buffer.from(
      `sha256=${createHmac("sha256", secret).update(req.body).digest("hex")}`,
    );
    const got = Buffer.from(String(req.headers["x-picluster-signature"]));
    return expected.length === got.length && timingSafeEqual(expected, got);
  };
  assert.ok(verify("shared-secret"), "the signature verifies with the secret");
  assert.ok(!verify("wrong-secret"), "and not with another");

  const unsigned = channel({ name: "plain", type: "webhook", url: rx.url, headers: {} });
  await send(unsigned, msg);
  assert.equal(rx.requests[1]?.headers["x-picluster-signature"], undefined);
});

test("alert channels - ntfy: the text as body, Title, Priority and Tags by status and severity, Click, Bearer token", async (t) => {
  const rx = await startReceiver(t);
  const ntfy = channel({ name: "phone", type: "ntfy", url: `${rx.url}/mytopic`, token: "tk_1" });
  await send(ntfy, message());
  await send(ntfy, message({ severity: "warning", url: undefined }));
  await send(ntfy, message({ status: "resolved", title: "pi-3 is up again" }));
  await send(ntfy, message({ severity: "warning", title: "pi-4 is at 82 °C" }));
  const fixed = channel({ name: "quiet", type: "ntfy", url: `${rx.url}/quiet`, priority: 2 });
  await send(fixed, message());

  const [critical, warning, resolved, unicode, quiet] = rx.requests;
  assert.equal(critical?.path, "/mytopic");
  assert.equal(critical?.headers.title, "pi-3 is down");
  assert.equal(critical?.headers.priority, "5");
  assert.equal(critical?.headers.tags, "rotating_light");
  assert.equal(critical?.headers.click, "http://primary.lan:8123/nodes/n-3");
  assert.equal(critical?.headers.authorization, "Bearer tk_1");
  assert.match(critical?.headers["content-type"] ?? "", /^text\/plain/);
  assert.equal(
    critical?.body,
    "pi-3 has sent nothing since 12:00:05.\nCheck its power and network.\nNodes: pi-3",
  );
  assert.equal(warning?.headers.priority, "4");
  assert.equal(warning?.headers.tags, "warning");
  assert.equal(warning?.headers.click, undefined, "no Click without a url");
  assert.equal(resolved?.headers.priority, "3");
  assert.equal(resolved?.headers.tags, "white_check_mark");
  // Non-ASCII goes as an RFC 2047 encoded word, which ntfy decodes.
  const m = /^=\?UTF-8\?B\?([A-Za-z0-9+/=]+)\?=$/.exec(String(unicode?.headers.title));
  assert.equal(Buffer.from(m?.[1] ?? "", "base64").toString("utf8"), "pi-4 is at 82 °C");
  assert.equal(quiet?.headers.priority, "2", "the channel's own priority wins");
  assert.equal(quiet?.headers.authorization, undefined);
});

test("alert channels - Discord gets {content} of at most 2000 characters and pings no one; Slack gets {text}", async (t) => {
  const rx = await startReceiver(t, () => ({ status: 204 }));
  const discord = channel({ name: "chat", type: "discord", url: `${rx.url}/api/webhooks/1/tok` });
  const slack = channel({ name: "team", type: "slack", url: `${rx.url}/services/T/B/x` });
  await send(discord, message({ title: "@everyone pi_3 is down" }));
  await send(discord, message({ text: "x".repeat(5_000) }));
  await send(slack, message({ title: "load > 4 on <pi-3>" }));

  const short = JSON.parse(rx.requests[0]?.body ?? "") as {
    content: string;
    allowed_mentions: { parse: unknown[] };
  };
  assert.match(short.content, /\*\*@everyone pi\\_3 is down\*\*/);
  assert.match(short.content, /Check its power and network\./);
  assert.match(short.content, /http:\/\/primary\.lan:8123\/nodes\/n-3/);
  assert.deepEqual(short.allowed_mentions, { parse: [] });
  const long = JSON.parse(rx.requests[1]?.body ?? "") as { content: string };
  assert.equal([...long.content].length, DISCORD_MAX_CHARS);
  assert.ok(long.content.endsWith("…"));

  const slackBody = JSON.parse(rx.requests[2]?.body ?? "") as { text: string };
  assert.deepEqual(Object.keys(slackBody), ["text"]);
  assert.match(slackBody.text, /\*load &gt; 4 on &lt;pi-3&gt;\*/);
  assert.match(slackBody.text, /<http:\/\/primary\.lan:8123\/nodes\/n-3\|Open in picluster>/);
  assert.equal(rx.requests[2]?.path, "/services/T/B/x");
});

test("alert channels - an HTTP failure is one line with the status and a body excerpt, never the URL's path", async (t) => {
  const rx = await startReceiver(t, () => ({
    status: 404,
    body: '{"message": "Unknown Webhook",\n "code": 10015}',
  }));
  const ch = channel({ name: "chat", type: "discord", url: `${rx.url}/api/webhooks/1/s3cret` });
  const host = new URL(rx.url).host;
  await assert.rejects(send(ch, message()), (err: Error) => {
    assert.equal(
      err.message,
      `HTTP 404 from ${host}: {"message": "Unknown Webhook", "code": 10015}`,
    );
    return true;
  });
  // Nothing listens on a port just closed: refused, said with the host only.
  const port = await closedPort();
  const refused = channel({
    name: "gone",
    type: "slack",
    url: `http://127.0.0.1:${port}/services/s3cret`,
  });
  await assert.rejects(send(refused, message()), (err: Error) => {
    assert.match(
      err.message,
      new RegExp(`^POST to 127\\.0\\.0\\.1:${port} failed: .*ECONNREFUSED`),
    );
    assert.ok(!err.message.includes("s3cret"));
    return true;
  });
});

test("alert channels - command: a real process gets the message as JSON on stdin and in PICLUSTER_ALERT_* variables; exit 3 fails", async (t) => {
  const dir = scratchDir(t, "picluster-cmd-");
  const out = join(dir, "out.json");
  const script = `
    const fs = require("node:fs");
    const stdin = fs.readFileSync(0, "utf8");
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("PICLUSTER_")));
    fs.writeFileSync(process.argv[1], JSON.stringify({ stdin, env, argv: process.argv.slice(1) }));
  `;
  const ok = channel({
    name: "script",
    type: "command",
    command: [process.execPath, "-e", script, out, "two words"],
  });
  const msg = message({
    nodes: [
      { id: "n-3", name: "pi-3" },
      { id: "n-4", name: "pi-4", value: 1 },
    ],
  });
  await send(ok, msg);
  const got = JSON.parse(readFileSync(out, "utf8")) as {
    stdin: string;
    env: Record<string, string>;
    argv: string[];
  };
  assert.deepEqual(JSON.parse(got.stdin), { version: 1, ...msg });
  assert.deepEqual(got.env, {
    PICLUSTER_ALERT_STATUS: "firing",
    PICLUSTER_ALERT_TITLE: "pi-3 is down",
    PICLUSTER_ALERT_RULE: "node_down",
    PICLUSTER_ALERT_SEVERITY: "critical",
    PICLUSTER_ALERT_NODES: "pi-3,pi-4",
  });
  assert.deepEqual(got.argv, [out, "two words"], "each argument stays one argument");

  const failing = channel({
    name: "failing",
    type: "command",
    command: [
      process.execPath,
      "-e",
      'process.stderr.write("no route to pager\\n"); process.exit(3)',
    ],
  });
  await assert.rejects(send(failing, msg), /exited with code 3: no route to pager$/);
  const missing = channel({ name: "missing", type: "command", command: [join(dir, "nope")] });
  await assert.rejects(send(missing, msg), /^Error: cannot run nope: ENOENT$/);
});

test("alert channels - a command cut by its timeout is killed with everything it started", async (t) => {
  const dir = scratchDir(t, "picluster-cmd-");
  const pids = join(dir, "pids");
  // The program starts a grandchild, writes both pids, then hangs.
  const script = `
    const { spawn } = require("node:child_process");
    const fs = require("node:fs");
    const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    fs.writeFileSync(process.argv[1], JSON.stringify([process.pid, child.pid]));
    setInterval(() => {}, 1000);
  `;
  const { hooks, events } = recordHooks();
  const d = deliverer(
    t,
    [
      channel({
        name: "slow",
        type: "command",
        command: [process.execPath, "-e", script, pids],
        timeoutMs: 1_000,
      }),
    ],
    hooks,
  );
  d.deliver(["slow"], message());
  await waitFor(
    () => events.some((e) => e.kind === "gaveUp"),
    "gave up on the slow command",
    15_000,
  );
  assert.deepEqual(events[0], {
    kind: "failed",
    channel: "slow",
    title: "pi-3 is down",
    attempt: 1,
    error: "timed out after 1s",
  });
  const [pid, grandchild] = JSON.parse(readFileSync(pids, "utf8")) as [number, number];
  await waitFor(
    () => !processAlive(pid) && !processAlive(grandchild),
    "the command and its child are gone",
    10_000,
  );
});

// ---- email, to a real SMTP server ----

const LOGIN = { user: "picluster@example.org", password: "app-password-1" };
const noSmtp = smtpUnavailable();

test("alert channels - email: STARTTLS on a server with a self-signed certificate, AUTH, subject, from, to and text arrive", {
  skip: noSmtp,
}, async (t) => {
  const smtp = await startSmtpServers(t, LOGIN);
  const def = (over: Partial<EmailChannelDef>): EmailChannelDef => ({
    ...BASE,
    name: "mail",
    type: "email",
    host: "127.0.0.1",
    port: smtp.ports.starttls,
    security: "starttls",
    user: LOGIN.user,
    password: LOGIN.password,
    from: "picluster <picluster@example.org>",
    to: ["ops@example.org", "oncall@example.org"],
    caFile: smtp.certFile,
    ...over,
  });
  const log = capturedLog();
  const mail = createChannel(def({}), { log: log.log });
  await send(mail, message());
  await waitFor(() => smtp.mails.length === 1, "the mail arrived", 10_000);
  const got = smtp.mails[0];
  assert.equal(got?.server, "starttls");
  assert.equal(got?.starttls, true, "sent after STARTTLS");
  assert.equal(got?.login, LOGIN.user, "authenticated");
  assert.equal(got?.subject, "[picluster] pi-3 is down");
  assert.equal(got?.from, "picluster <picluster@example.org>");
  assert.equal(got?.mail_from, "picluster@example.org");
  assert.deepEqual(got?.rcpt_tos, ["ops@example.org", "oncall@example.org"]);
  assert.equal(got?.to, "ops@example.org, oncall@example.org");
  assert.equal(
    got?.text,
    [
      "pi-3 has sent nothing since 12:00:05.",
      "Check its power and network.",
      "Nodes: pi-3",
      "",
      "FIRING: rule node_down, critical, at 2025-01-02T12:00:05.000Z",
      "Dashboard: http://primary.lan:8123/nodes/n-3",
      "",
      "-- ",
      "Sent by picluster.",
      "",
    ].join("\n"),
  );

  // Implicit TLS (port-465 style) works the same.
  await send(
    createChannel(def({ security: "tls", port: smtp.ports.tls }), { log: log.log }),
    message({ title: "over tls" }),
  );
  await waitFor(() => smtp.mails.length === 2, "the TLS mail arrived", 10_000);
  assert.equal(smtp.mails[1]?.server, "tls");
  assert.equal(smtp.mails[1]?.subject, "[picluster] over tls");
  assert.equal(smtp.mails[1]?.login, LOGIN.user);

  // A local relay without TLS or a login.
  const relay = def({ security: "none", port: smtp.ports.plain, caFile: undefined });
  delete relay.user;
  delete relay.password;
  await send(createChannel(relay, { log: log.log }), message({ title: "via relay" }));
  await waitFor(() => smtp.mails.length === 3, "the relayed mail arrived", 10_000);
  assert.equal(smtp.mails[2]?.server, "plain");
  assert.equal(smtp.mails[2]?.login, null);
  assert.ok(!log.raw.join("").includes(LOGIN.password), "the password is never logged");
});

test("alert channels - email refuses: wrong password, an untrusted certificate, a server without STARTTLS", {
  skip: noSmtp,
}, async (t) => {
  const smtp = await startSmtpServers(t, LOGIN);
  const def: EmailChannelDef = {
    ...BASE,
    name: "mail",
    type: "email",
    host: "127.0.0.1",
    port: smtp.ports.starttls,
    security: "starttls",
    user: LOGIN.user,
    password: "wrong-password",
    from: "picluster@example.org",
    to: ["ops@example.org"],
    caFile: smtp.certFile,
  };
  const { log } = capturedLog();
  const port = smtp.ports.starttls;
  await assert.rejects(send(createChannel(def, { log }), message()), (err: Error) => {
    assert.match(
      err.message,
      new RegExp(
        `^SMTP 127\\.0\\.0\\.1:${port}: .*535 5\\.7\\.8 Authentication credentials invalid`,
      ),
    );
    assert.ok(!err.message.includes("wrong-password"));
    assert.ok(!err.message.includes("\n"), "one line");
    return true;
  });
  const untrusted = { ...def, password: LOGIN.password };
  delete untrusted.caFile;
  await assert.rejects(send(createChannel(untrusted, { log }), message()), (err: Error) => {
    assert.match(err.message, /^SMTP 127\.0\.0\.1:\d+: .*self[- ]signed certificate/i);
    assert.match(err.message, /set ca_file to its CA or certificate\)$/);
    return true;
  });
  const noStarttls = { ...def, password: LOGIN.password, port: smtp.ports.plain };
  await assert.rejects(send(createChannel(noStarttls, { log }), message()), (err: Error) => {
    assert.match(err.message, /^SMTP 127\.0\.0\.1:\d+: .*STARTTLS/);
    return true;
  });
  const missingCa = { ...def, password: LOGIN.password, caFile: "/nonexistent/ca.pem" };
  await assert.rejects(
    send(createChannel(missingCa, { log }), message()),
    /^Error: cannot read ca_file \/nonexistent\/ca\.pem: ENOENT$/,
  );
  assert.equal(smtp.mails.length, 0, "no mail got through");
});

// ---- delivery: retries, isolation, close ----

test("alert delivery - two 500s then 200: delivered on attempt 3 after two failed attempts; logs name the host, never the path or secret", async (t) => {
  const rx = await startReceiver(
    t,
    (_req, i): Answer => (i < 2 ? { status: 500, body: "database is locked" } : { status: 200 }),
  );
  const { hooks, events } = recordHooks();
  const log = capturedLog();
  const d = deliverer(
    t,
    [
      channel(
        {
          name: "hook",
          type: "webhook",
          url: `${rx.url}/s3cret-path`,
          secret: "hmac-secret-2",
          headers: {},
          retries: 5,
        },
        log.log,
      ),
    ],
    hooks,
    log.log,
  );
  const host = new URL(rx.url).host;
  d.deliver(["hook"], message());
  await waitFor(() => events.some((e) => e.kind === "delivered"), "delivered", 10_000);
  assert.deepEqual(
    events.map((e) => [e.kind, e.attempt ?? e.attempts, e.error]),
    [
      ["failed", 1, `HTTP 500 from ${host}: database is locked`],
      ["failed", 2, `HTTP 500 from ${host}: database is locked`],
      ["delivered", 3, undefined],
    ],
  );
  assert.equal(rx.requests.length, 3);
  const lines = log.lines();
  const failed = lines.filter((l) => l.msg === "alert attempt failed");
  assert.deepEqual(
    failed.map((l) => [l.channel, l.type, l.target, l.attempt, l.of, l.rule, l.level]),
    [
      ["hook", "webhook", host, 1, 6, "node_down", "warn"],
      ["hook", "webhook", host, 2, 6, "node_down", "warn"],
    ],
  );
  assert.equal(lines.find((l) => l.msg === "alert delivered")?.attempts, 3);
  const all = log.raw.join("");
  assert.ok(!all.includes("s3cret-path") && !all.includes("hmac-secret-2"), "no secret in logs");
});

test("alert delivery - a hanging channel is cut at its timeout and retried while a healthy one gets the same message at once", async (t) => {
  const hang = await startReceiver(t, () => "hang");
  const ok = await startReceiver(t);
  const { hooks, events } = recordHooks();
  const timeoutMs = 2_000;
  const d = deliverer(
    t,
    [
      channel({ name: "stuck", type: "slack", url: hang.url, timeoutMs, retries: 1 }),
      channel({ name: "fine", type: "slack", url: ok.url }),
    ],
    hooks,
  );
  const started = Date.now();
  d.deliver(["stuck", "fine"], message());
  await waitFor(() => events.some((e) => e.kind === "delivered"), "fine delivered", 10_000);
  const fineAfter = Date.now() - started;
  assert.ok(
    !events.some((e) => e.channel === "stuck"),
    "the healthy channel was delivered before the stuck one's first timeout",
  );
  assert.ok(
    fineAfter < timeoutMs,
    `delivered in ${fineAfter} ms, within the ${timeoutMs} ms timeout`,
  );
  assert.equal(ok.requests.length, 1);

  await waitFor(() => events.some((e) => e.kind === "gaveUp"), "stuck given up", 20_000);
  assert.deepEqual(
    events
      .filter((e) => e.channel === "stuck")
      .map((e) => [e.kind, e.attempt ?? e.attempts, e.error]),
    [
      ["failed", 1, "timed out after 2s"],
      ["failed", 2, "timed out after 2s"],
      ["gaveUp", 2, "timed out after 2s"],
    ],
  );
  assert.equal(hang.requests.length, 2, "retried once");
  await waitFor(
    () => hang.requests.every((r) => r.closedEarly),
    "each cut attempt closed its connection",
    5_000,
  );
});

test("alert delivery - always 503: given up after retries + 1 attempts", async (t) => {
  const rx = await startReceiver(t, () => ({ status: 503, body: "maintenance" }));
  const { hooks, events } = recordHooks();
  const d = deliverer(
    t,
    [channel({ name: "chat", type: "discord", url: rx.url, retries: 2 })],
    hooks,
  );
  d.deliver(["chat"], message());
  await waitFor(() => events.some((e) => e.kind === "gaveUp"), "given up", 10_000);
  assert.equal(rx.requests.length, 3);
  assert.equal(events.filter((e) => e.kind === "failed").length, 3);
  const gaveUp = events.at(-1);
  assert.equal(gaveUp?.attempts, 3);
  assert.match(String(gaveUp?.error), /^HTTP 503 from 127\.0\.0\.1:\d+: maintenance$/);
});

test("alert delivery - deliver() returns at once; one channel's messages go out in order", async (t) => {
  const rx = await startReceiver(t);
  const { hooks, events } = recordHooks();
  const d = deliverer(
    t,
    [channel({ name: "hook", type: "webhook", url: rx.url, headers: {} })],
    hooks,
  );
  for (const n of [1, 2, 3, 4, 5]) d.deliver(["hook"], message({ title: `m${n}` }));
  assert.equal(rx.requests.length, 0, "nothing is sent while deliver() runs");
  assert.equal(events.length, 0, "no hook runs inside deliver()");
  await waitFor(() => events.length === 5, "five delivered", 10_000);
  assert.deepEqual(
    rx.requests.map((r) => (JSON.parse(r.body) as AlertMessage).title),
    ["m1", "m2", "m3", "m4", "m5"],
  );
});

test("alert delivery - a full queue drops its oldest waiting message and says so; an unknown channel is given up at once", async (t) => {
  const hang = await startReceiver(t, () => "hang");
  const { hooks, events } = recordHooks();
  const d = new Deliverer({
    channels: [channel({ name: "stuck", type: "slack", url: hang.url, timeoutMs: 60_000 })],
    hooks,
    log: capturedLog().log,
    queueCapacity: 2,
  });
  t.after(() => d.close());
  for (const n of [1, 2, 3, 4]) d.deliver(["stuck"], message({ title: `m${n}` }));
  d.deliver(["nowhere"], message({ title: "lost" }));
  await waitFor(() => events.length === 2, "dropped and given up", 5_000);
  assert.deepEqual(events, [
    { kind: "dropped", channel: "stuck", title: "m2", capacity: 2 },
    {
      kind: "gaveUp",
      channel: "nowhere",
      title: "lost",
      attempts: 0,
      error: 'no channel named "nowhere"',
    },
  ]);
  await waitFor(() => hang.requests.length === 1, "m1 in flight", 5_000);
  assert.equal(
    (JSON.parse(hang.requests[0]?.body ?? "{}") as { text: string }).text.includes("m1"),
    true,
  );
});

test("alert delivery - close() with an attempt hanging returns promptly, aborts it, and nothing is reported after", async (t) => {
  const hang = await startReceiver(t, () => "hang");
  const { hooks, events } = recordHooks();
  const d = deliverer(
    t,
    [
      channel({
        name: "stuck",
        type: "ntfy",
        url: `${hang.url}/t`,
        timeoutMs: 300_000,
        retries: 5,
      }),
    ],
    hooks,
  );
  d.deliver(["stuck"], message());
  d.deliver(["stuck"], message({ title: "second" }));
  await waitFor(() => hang.requests.length === 1, "the attempt reached the receiver", 5_000);
  await deadline(d.close(), 3_000, "close()");
  await waitFor(() => hang.requests[0]?.closedEarly === true, "the connection was closed", 5_000);
  d.deliver(["stuck"], message({ title: "after close" }));
  assert.deepEqual(events, [], "no failure reported for a shutdown");
  assert.equal(hang.requests.length, 1, "the waiting message was not sent");
});

test("alert delivery - close(drainMs) lets queued messages go out first, and a hanging channel holds it no longer than drainMs", async (t) => {
  const slow = await startReceiver(t, () => ({ status: 200 }));
  const hang = await startReceiver(t, () => "hang");
  const { hooks, events } = recordHooks();
  const d = deliverer(
    t,
    [
      channel({ name: "hook", type: "webhook", url: slow.url, headers: {}, retries: 0 }),
      channel({
        name: "stuck",
        type: "ntfy",
        url: `${hang.url}/t`,
        timeoutMs: 300_000,
        retries: 0,
      }),
    ],
    hooks,
  );
  for (const title of ["one", "two", "three"]) d.deliver(["hook", "stuck"], message({ title }));
  const started = Date.now();
  await deadline(d.close(500), 5_000, "close(500)");
  const took = Date.now() - started;
  assert.deepEqual(
    slow.requests.map((r) => (JSON.parse(r.body) as AlertMessage).title),
    ["one", "two", "three"],
    "all queued messages went out before close() returned",
  );
  assert.ok(took >= 400, `close waited for the hanging channel (${took} ms)`);
  assert.equal(hang.requests.length, 1, "the hanging channel's queue was dropped after the drain");
  assert.deepEqual(
    events.filter((e) => e.kind !== "delivered"),
    [],
    "no failure reported for a shutdown",
  );
  assert.equal(events.filter((e) => e.kind === "delivered").length, 3);
});

test("alert delivery - test() sends one test message now and reports the outcome", async (t) => {
  const rx = await startReceiver(t, (_req, i) =>
    i === 0 ? { status: 200 } : { status: 401, body: "bad token" },
  );
  const d = deliverer(
    t,
    [channel({ name: "hook", type: "webhook", url: rx.url, headers: {}, retries: 5 })],
    {},
  );
  const ok = await d.test("hook");
  assert.equal(ok.ok, true);
  assert.equal(ok.attempts, 1);
  assert.ok(ok.ms >= 0);
  const body = JSON.parse(rx.requests[0]?.body ?? "{}") as AlertMessage;
  assert.equal(body.status, "test");
  assert.equal(body.title, "Test message from picluster");
  const bad = await d.test("hook");
  assert.deepEqual(
    { ...bad, ms: 0 },
    {
      ok: false,
      attempts: 1,
      ms: 0,
      error: `HTTP 401 from ${new URL(rx.url).host}: bad token`,
    },
  );
  assert.equal(rx.requests.length, 2, "one attempt each, no retries");
  assert.deepEqual(await d.test("nope"), {
    ok: false,
    attempts: 0,
    ms: 0,
    error: 'no channel named "nope" (channels: hook)',
  });
});

test("alert delivery - backoff doubles from the base, is capped, and jitters within its upper half", () => {
  assert.equal(
    backoffMs(1, 1_000, 300_000, () => 0),
    500,
  );
  assert.equal(
    backoffMs(1, 1_000, 300_000, () => 1),
    1_000,
  );
  assert.equal(
    backoffMs(4, 1_000, 300_000, () => 1),
    8_000,
  );
  assert.equal(
    backoffMs(30, 1_000, 300_000, () => 1),
    300_000,
  );
  assert.equal(
    backoffMs(30, 1_000, 300_000, () => 0),
    150_000,
  );
});
