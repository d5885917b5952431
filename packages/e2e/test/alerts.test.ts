/**
 * Alerts end to end: a real primary with real agents on loopback, its rules
 * from a config file, and every channel delivered to a real receiver (HTTP
 * servers for webhook, ntfy, Discord and Slack; aiosmtpd for email).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { waitFor } from "@picluster/common/testing";
import {
  httpPort,
  spawnAgent,
  startAgent,
  startPrimary,
  type TestPrimary,
} from "./support/cluster.js";
import { type ReceivedRequest, startReceiver } from "./support/http-receiver.js";
import { smtpUnavailable, startSmtpServers } from "./support/smtp-server.js";

const BIN = new URL("../../../cli/bin/picluster.js", import.meta.url).pathname;
const SECRET = "hook-secret";
const LOGIN = { user: "alerts@example.org", password: "app-password-123" };

interface Message {
  status: string;
  rule: string;
  title: string;
  text: string;
  nodes: Array<{ name: string }>;
}

function webhookMessages(requests: ReceivedRequest[]): Message[] {
  return requests.map((r) => JSON.parse(r.body) as Message);
}

/** The CLI in a child process, without blocking this one (the primary runs here). */
function cli(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

/** Stored events of a kind once at least `n` are there (the store commits every 100 ms). */
async function storedAtLeast(
  p: TestPrimary,
  kind: string,
  n: number,
): Promise<Array<{ data: Record<string, unknown> }>> {
  await waitFor(
    () => p.primary.store.events({ kind, limit: 1_000 }).length >= n,
    `${n} ${kind} event(s) stored`,
    5_000,
  );
  return storedEvents(p, kind);
}

/** What each request to a receiver announced: firing or resolved, whatever the format. */
function webhookOrText(requests: ReceivedRequest[]): string[] {
  return requests.map((r) =>
    /Resolved/.test(r.body + String(r.headers.title ?? "")) ? "resolved" : "firing",
  );
}

async function storedEvents(
  p: TestPrimary,
  kind: string,
): Promise<Array<{ data: Record<string, unknown> }>> {
  const res = await fetch(`http://127.0.0.1:${httpPort(p)}/api/events?kind=${kind}&limit=100`);
  return ((await res.json()) as { events: Array<{ data: Record<string, unknown> }> }).events;
}

test("alerts - a killed node: one down message on every channel within the rule's duration plus a second, one resolved when it is back; a bye tells nothing; a failing and a hanging channel are retried without delaying the others", {
  skip: smtpUnavailable() ?? false,
}, async (t) => {
  const hook = await startReceiver(t);
  const ntfy = await startReceiver(t);
  const discord = await startReceiver(t);
  const slack = await startReceiver(t);
  const broken = await startReceiver(t, () => ({ status: 500, body: "internal error" }));
  const stuck = await startReceiver(t, () => "hang");
  const smtp = await startSmtpServers(t, LOGIN);
  const ini = [
    "[alert.node_down]",
    "for = 2s",
    "[channel.hook]",
    "type = webhook",
    `url = ${hook.url}/picluster`,
    `secret = ${SECRET}`,
    "[channel.phone]",
    "type = ntfy",
    `url = ${ntfy.url}/cluster-alerts`,
    "[channel.chat]",
    "type = discord",
    `url = ${discord.url}/api/webhooks/1/x`,
    "[channel.team]",
    "type = slack",
    `url = ${slack.url}/services/T/B/x`,
    "[channel.mail]",
    "type = email",
    "host = 127.0.0.1",
    `port = ${smtp.ports.starttls}`,
    `user = ${LOGIN.user}`,
    `password = ${LOGIN.password}`,
    "from = picluster <alerts@example.org>",
    "to = owner@example.org",
    `ca_file = ${smtp.certFile}`,
    "[channel.broken]",
    "type = webhook",
    `url = ${broken.url}/`,
    "retries = 1",
    "[channel.stuck]",
    "type = webhook",
    `url = ${stuck.url}/`,
    "timeout = 1s",
    "retries = 1",
    "",
  ].join("\n");
  const p = await startPrimary(t, { "primary.vitals_interval": "1s" }, undefined, undefined, ini);
  const doomed = spawnAgent(t, p, "pi-doomed");
  const polite = startAgent(t, p, "pi-polite", {}, "x86-server");
  await waitFor(
    () => p.primary.registry.list().filter((n) => n.state === "alive").length === 2,
    "two agents alive",
    15_000,
  );

  // A planned goodbye: left, never down, never told.
  await polite.stop();
  await waitFor(
    () => p.primary.registry.list().find((n) => n.name === "pi-polite")?.state === "left",
    "pi-polite left",
    5_000,
  );

  // Killed only once it has saved its credential (written just after it is
  // seen alive): restarted on the same data, it must come back without a token.
  await waitFor(
    () => existsSync(join(doomed.dataDir, "credential.json")),
    "pi-doomed's credential saved",
    5_000,
  );
  const killedAt = Date.now();
  doomed.kill("SIGKILL");
  const onTime = [hook, ntfy, discord, slack];
  await waitFor(
    () => onTime.every((r) => r.requests.length >= 1) && smtp.mails.length >= 1,
    "the down message on every working channel",
    10_000,
  );
  const tookMs = Date.now() - killedAt;
  t.diagnostic(`down message on every channel ${tookMs} ms after kill -9 (for = 2s)`);
  assert.ok(tookMs < 2_000 + 1_000, `told ${tookMs} ms after the kill (rule: for = 2s)`);

  // What each receiver got, in its own format.
  const [down] = webhookMessages(hook.requests);
  assert.equal(down?.status, "firing");
  assert.equal(down?.rule, "node_down");
  assert.equal(down?.title, "pi-doomed is down");
  assert.deepEqual(
    down?.nodes.map((n) => n.name),
    ["pi-doomed"],
  );
  const signed = hook.requests[0];
  assert.equal(
    signed?.headers["x-picluster-signature"],
    `sha256=${createHmac("sha256", SECRET)
      .update(signed?.body ?? "")
      .digest("hex")}`,
  );
  assert.equal(ntfy.requests[0]?.path, "/cluster-alerts");
  assert.equal(ntfy.requests[0]?.headers.title, "pi-doomed is down");
  assert.equal(ntfy.requests[0]?.headers.priority, "5");
  assert.match(JSON.parse(discord.requests[0]?.body ?? "{}").content, /pi-doomed is down/);
  assert.match(JSON.parse(slack.requests[0]?.body ?? "{}").text, /pi-doomed is down/);
  assert.equal(smtp.mails[0]?.subject, "[picluster] pi-doomed is down");
  assert.match(smtp.mails[0]?.text ?? "", /Check its power and network/);
  assert.equal(smtp.mails[0]?.starttls, true);

  // The failing channel was tried twice, the hanging one cut and retried; both are events.
  await waitFor(
    () => p.primary.events.recent().filter((e) => e.kind === "alert.delivery_failed").length >= 2,
    "both bad channels given up",
    15_000,
  );
  assert.equal(broken.requests.length, 2, "a 500 is retried once (retries = 1)");
  assert.equal(stuck.requests.length, 2, "a hang is cut at 1 s and retried once");
  const failures = p.primary.events
    .recent()
    .flatMap((e) => (e.kind === "alert.delivery_failed" ? [e] : []));
  assert.deepEqual(failures.map((f) => f.channel).sort(), ["broken", "stuck"]);
  assert.match(String(failures.find((f) => f.channel === "broken")?.error), /500/);

  // Told once while it stayed down (the bad channels' retries took seconds meanwhile).
  for (const r of onTime) assert.equal(r.requests.length, 1);
  assert.equal(smtp.mails.length, 1);

  // Back: one resolved message each.
  spawnAgent(t, p, "pi-doomed", "", doomed.dataDir);
  await waitFor(
    () => onTime.every((r) => r.requests.length === 2) && smtp.mails.length === 2,
    "the resolved message on every channel",
    30_000,
  ).catch((err: unknown) => {
    // What the primary saw, to tell a slow reconnect from a lost message.
    t.diagnostic(
      JSON.stringify({
        log: p.records
          .filter((r) => /alert|node state|new node/.test(String(r.msg)))
          .map((r) => [r.msg, r.node, r.title, r.to, r.reason]),
        received: onTime.map((r) => r.requests.length),
        mails: smtp.mails.length,
        states: p.primary.alerts.states(),
      }),
    );
    throw err;
  });
  for (const r of onTime)
    assert.deepEqual(
      webhookOrText(r.requests),
      ["firing", "resolved"],
      "one message there and one back",
    );
  const resolved = webhookMessages(hook.requests)[1];
  assert.equal(resolved?.status, "resolved");
  assert.equal(resolved?.title, "Resolved: pi-doomed is back");
  assert.equal(smtp.mails[1]?.subject, "[picluster] Resolved: pi-doomed is back");
  const messages = webhookMessages(hook.requests);
  assert.ok(
    messages.every((m) => !m.nodes.some((n) => n.name === "pi-polite")),
    "nothing about the node that said bye",
  );
  const kinds = (await storedAtLeast(p, "alert.firing", 1)).map((e) => e.data.name);
  assert.deepEqual(kinds, ["pi-doomed"]);
  assert.ok(
    (await storedAtLeast(p, "alert.delivery_failed", 2)).length >= 2,
    "failures are stored",
  );
});

test("alerts - a Pi whose firmware reports under-voltage fires in plain words naming the node and its power supply; it shows in the API, the stream's events and /metrics, and resolves when the bit clears; `picluster alerts test` says whether a channel delivers", async (t) => {
  const hook = await startReceiver(t);
  const dead = await startReceiver(t, () => ({ status: 503, body: "down for maintenance" }));
  const token = "alerts-token";
  const ini = [
    "[channel.hook]",
    "type = webhook",
    `url = ${hook.url}/hook`,
    "[channel.dead]",
    "type = webhook",
    `url = ${dead.url}/hook`,
    "retries = 0",
    "[alert.under_voltage]",
    "channels = hook",
    "clear = 2s",
    "",
  ].join("\n");
  const p = await startPrimary(
    t,
    { "primary.vitals_interval": "1s", "http.token": token },
    undefined,
    undefined,
    ini,
  );
  const base = `http://127.0.0.1:${httpPort(p)}`;
  // The pi4 tree's get_throttled is 0x50005: under-voltage and throttled, now and since boot.
  const pi = startAgent(t, p, "pi-volt", {}, "pi4");
  await waitFor(() => hook.requests.length >= 1, "the under-voltage message", 10_000);
  const msg = webhookMessages(hook.requests)[0];
  assert.equal(msg?.rule, "under_voltage");
  assert.equal(msg?.title, "pi-volt reports under-voltage: its power supply is too weak");
  assert.match(msg?.text ?? "", /Check the power supply and cable/);
  assert.match(msg?.text ?? "", /Node: pi-volt/);

  const alerts = (await (await fetch(`${base}/api/alerts`)).json()) as {
    states: Array<{ rule: string; name: string; state: string }>;
    rules: Array<{ name: string; stock: boolean; channels: string[] }>;
    channels: Array<{ name: string; type: string }>;
  };
  assert.ok(
    alerts.states.some(
      (s) => s.rule === "under_voltage" && s.name === "pi-volt" && s.state === "firing",
    ),
  );
  assert.deepEqual(alerts.rules.find((r) => r.name === "under_voltage")?.channels, ["hook"]);
  assert.deepEqual(alerts.channels, [
    { name: "hook", type: "webhook" },
    { name: "dead", type: "webhook" },
  ]);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(
    metrics,
    /^picluster_alert_firing\{rule="under_voltage",node="pi-volt",node_id="[^"]+",severity="warning"\} 1$/m,
  );

  // The firmware's bit clears: resolved, once.
  writeFileSync(
    join(pi.dataDir, "root", "sys/devices/platform/soc/soc:firmware/get_throttled"),
    "0\n",
  );
  await waitFor(() => hook.requests.length >= 2, "the resolved message", 10_000);
  assert.equal(
    webhookMessages(hook.requests)[1]?.title,
    "Resolved: pi-volt's power supply holds up again",
  );
  assert.doesNotMatch(await (await fetch(`${base}/metrics`)).text(), /rule="under_voltage"/);
  const firing = await storedAtLeast(p, "alert.firing", 1);
  assert.ok(firing.some((e) => e.data.rule === "under_voltage" && e.data.name === "pi-volt"));
  assert.equal(
    (await storedAtLeast(p, "alert.resolved", 1)).filter((e) => e.data.rule === "under_voltage")
      .length,
    1,
  );

  // The CLI's test message: delivered (exit 0) or not (exit 1, the reason in one line).
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PICLUSTER_"))),
    PICLUSTER_HTTP_PORT: String(httpPort(p)),
    PICLUSTER_HTTP_TOKEN: token,
  };
  const ok = await cli(["alerts", "test", "hook", "--json"], env);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal((JSON.parse(ok.stdout) as { ok: boolean }).ok, true);
  assert.equal(webhookMessages(hook.requests).at(-1)?.status, "test");
  const bad = await cli(["alerts", "test", "dead"], env);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^error: not delivered through dead: .*503/);
  const none = await cli(["alerts", "test", "nope"], env);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no channel "nope" \(configured: hook, dead\)/);
  const list = await cli(["alerts"], env);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /under_voltage/);
  assert.match(list.stdout, /Channels: hook \(webhook\), dead \(webhook\)/);
});
