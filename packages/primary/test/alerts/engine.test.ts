/**
 * The alert engine on a manual clock: the real registry and event bus, the
 * stock rules as the config gives them, and a notifier that keeps what it
 * is handed. (Delivery to real receivers is tested in alert-channels and the
 * e2e alerts test.)
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type AlertRuleDef,
  type IniDocument,
  localTime,
  parseIni,
  readAlertSections,
  silentLogger,
  utcOffset,
} from "@picluster/common";
import { ManualClock } from "@picluster/common/testing";
import { AlertEngine, type AlertSettings, STARTUP_GRACE_MS } from "../../src/alerts/engine.js";
import type { AlertMessage } from "../../src/alerts/message.js";
import { type ClusterEvent, EventBus } from "../../src/events.js";
import { MemoryRegistry, RESTART_REASON } from "../../src/registry.js";
import { details } from "../support/details.js";
import { vitals } from "../support/vitals.js";

/** A sample whose hottest zone is `celsius`. */
function temp(celsius: number) {
  return vitals(undefined, { temps: [{ zone: "thermal_zone0", type: "cpu-thermal", celsius }] });
}

function rulesFrom(ini: string): AlertRuleDef[] {
  const doc: IniDocument = parseIni(ini, "picluster.ini").doc;
  const { rules, problems } = readAlertSections(doc);
  assert.deepEqual(problems, []);
  return Object.values(rules);
}

function setup(ini = "", settings: Partial<AlertSettings> = {}) {
  const clock = new ManualClock();
  const events = new EventBus(silentLogger());
  const seen: ClusterEvent[] = [];
  events.on((e) => seen.push(e));
  const registry = new MemoryRegistry(events);
  const sent: Array<{ channels: readonly string[]; msg: AlertMessage }> = [];
  const engine = new AlertEngine({
    rules: rulesFrom(ini),
    settings: {
      enabled: true,
      channels: [],
      quietHours: undefined,
      legacyQuietHours: true,
      summaryAfter: 3,
      ...settings,
    },
    registry,
    events,
    clock,
    log: silentLogger(),
    version: "1.0.0",
    notifier: {
      channelNames: ["hook", "mail"],
      deliver: (channels, msg) => sent.push({ channels, msg }),
    },
    dashboardUrl: () => "http://127.0.0.1:8123/",
  });
  engine.start();
  let n = 0;
  const join = (
    name: string,
    labels: Record<string, string> = {},
    agentVersion = "1.0.0",
    legacy = false,
  ) => {
    const id = `id-${++n}`;
    registry.connected(
      { id, name, labels, address: "10.0.0.9:4000", agentVersion, legacy },
      clock.now(),
    );
    registry.setDetails(id, details({ cpu: { model: "A72", cores: 4 } }), clock.now());
    return id;
  };
  const alertEvents = () =>
    seen
      .filter((e) => e.kind.startsWith("alert."))
      .map((e) => `${e.kind}:${"rule" in e ? e.rule : ""}:${"name" in e ? e.name : ""}`);
  return { clock, registry, engine, sent, seen, join, alertEvents, events };
}

test("alerts - a node down for the rule's duration is told once, and once more when it is back; one that says bye is never told", () => {
  const { clock, registry, sent, join, alertEvents, engine } = setup();
  const a = join("pi-01");
  const b = join("pi-02");
  registry.setState(a, "down", "connection lost (ECONNRESET)", clock.now());
  clock.advance(59_000);
  assert.equal(sent.length, 0, "not before the stock minute");
  assert.equal(engine.states()[0]?.state, "pending");
  clock.advance(1_200);
  assert.equal(sent.length, 1, "one message within a second after the minute");
  const msg = sent[0]?.msg;
  assert.equal(msg?.title, "pi-01 is down");
  assert.equal(msg?.status, "firing");
  assert.equal(msg?.severity, "critical");
  assert.deepEqual(sent[0]?.channels, ["hook", "mail"], "every channel when the rule names none");
  assert.equal(msg?.url, `http://127.0.0.1:8123/#/node/${a}`);
  assert.match(msg?.text ?? "", /Check its power and network/);
  clock.advance(3_600_000);
  assert.equal(sent.length, 1, "told once, not again while it stays down");

  registry.connected(
    { id: a, name: "pi-01", labels: {}, address: "x", agentVersion: "1.0.0", legacy: false },
    clock.now(),
  );
  clock.advance(200);
  assert.equal(sent.length, 2);
  assert.equal(sent[1]?.msg.status, "resolved");
  assert.equal(sent[1]?.msg.title, "Resolved: pi-01 is back");

  // Planned: a bye (left) is never down, never told.
  registry.setState(b, "left", "node reboot", clock.now());
  clock.advance(10 * 60_000);
  assert.equal(sent.length, 2);
  assert.deepEqual(alertEvents(), [
    "alert.firing:node_down:pi-01",
    "alert.resolved:node_down:pi-01",
  ]);
});

test("alerts - a message says since when the node was down (not when the alert fired), with the zone, and how long in words", () => {
  const { clock, registry, sent, join } = setup();
  const a = join("pi-01");
  const wentDown = clock.now();
  const at = `${localTime(wentDown)} ${utcOffset(wentDown)}`;
  registry.setState(a, "down", "connection lost (ECONNRESET)", wentDown);
  clock.advance(61_000);
  assert.equal(sent.length, 1);
  const firing = sent[0]?.msg.text ?? "";
  assert.ok(firing.includes(`Since: ${at} (1 min ago)`), firing);
  clock.advance(5_455);
  registry.connected(
    { id: a, name: "pi-01", labels: {}, address: "x", agentVersion: "1.0.0", legacy: false },
    clock.now(),
  );
  clock.advance(200);
  const resolved = sent[1]?.msg.text ?? "";
  assert.ok(resolved.includes(`Lasted: 1 min 6 s, from ${at}`), resolved);
  assert.doesNotMatch(`${firing}\n${resolved}`, /\d+ms/, "no duration in milliseconds");
});

test("alerts - many nodes firing one rule at once are one summary; a few are told one by one", () => {
  const { clock, registry, sent, join } = setup();
  const ids = ["a", "b", "c", "d", "e"].map((x) => join(`pi-${x}`));
  // Down within a second and a half of each other, as when a switch dies.
  for (const id of ids) {
    registry.setState(id, "down", "no heartbeat", clock.now());
    clock.advance(300);
  }
  clock.advance(60_000);
  assert.equal(sent.length, 1, sent.map((s) => s.msg.title).join(" | "));
  assert.equal(sent[0]?.msg.title, "5 nodes are down");
  assert.deepEqual(
    sent[0]?.msg.nodes.map((n) => n.name),
    ["pi-a", "pi-b", "pi-c", "pi-d", "pi-e"],
  );
  assert.match(sent[0]?.msg.text ?? "", /Nodes: pi-a, pi-b, pi-c, pi-d, pi-e/);
  // They come back over 10 s (jittered reconnects): one message for all of them.
  for (const id of ids) {
    registry.connected(
      { id, name: "renamed", labels: {}, address: "x", agentVersion: "1.0.0", legacy: false },
      clock.now(),
    );
    clock.advance(2_000);
  }
  clock.advance(400);
  assert.deepEqual(
    sent.slice(1).map((s) => s.msg.title),
    ["Resolved: 5 nodes are back"],
  );
  assert.deepEqual(
    sent[1]?.msg.nodes.map((n) => n.name),
    ["pi-a", "pi-b", "pi-c", "pi-d", "pi-e"],
  );

  // Two nodes are below summary_after (3): one message each, there and back.
  const pair = ["f", "g"].map((x) => join(`pi-${x}`));
  for (const id of pair) registry.setState(id, "down", "no heartbeat", clock.now());
  clock.advance(60_400);
  assert.deepEqual(
    sent.slice(2).map((s) => s.msg.title),
    ["pi-f is down", "pi-g is down"],
  );
  for (const id of pair)
    registry.connected(
      { id, name: "x", labels: {}, address: "x", agentVersion: "1.0.0", legacy: false },
      clock.now(),
    );
  clock.advance(400);
  assert.deepEqual(
    sent.slice(4).map((s) => s.msg.title),
    ["Resolved: pi-f is back", "Resolved: pi-g is back"],
  );
});

test("alerts - under-voltage fires at once with words that name the node and the power supply; a dip resets a rule's duration", () => {
  const { clock, registry, sent, join, engine } = setup("[alert.cpu_temp]\nfor = 2m\n");
  const id = join("pi-volt");
  registry.setVitals(id, vitals({ underVoltage: true }), 1, clock.now());
  clock.advance(600);
  assert.equal(sent.length, 1);
  assert.match(sent[0]?.msg.title ?? "", /^pi-volt reports under-voltage/);
  assert.match(sent[0]?.msg.text ?? "", /power supply/);
  // A weak supply flickers: the bit flips every sample for five minutes. Still one alert.
  for (let i = 0; i < 30; i++) {
    registry.setVitals(id, vitals({ underVoltage: i % 2 === 0 }), 2 + i, clock.now());
    clock.advance(10_000);
  }
  assert.equal(sent.length, 1, "a flapping bit is one alert, not one per sample");
  // The last sample (10 s ago) was clear; steady for the rule's clear (1 min): resolved, once.
  clock.advance(49_000);
  assert.equal(sent.length, 1);
  clock.advance(1_600);
  assert.equal(sent[1]?.msg.title, "Resolved: pi-volt's power supply holds up again");

  const hot = (celsius: number, seq: number) =>
    registry.setVitals(id, temp(celsius), seq, clock.now());
  hot(85, 53);
  clock.advance(100_000);
  hot(70, 54); // a dip: the two minutes start again
  clock.advance(1_000);
  hot(86, 55);
  clock.advance(100_000);
  assert.equal(sent.length, 2, "not yet: hot for 100 s since the dip");
  clock.advance(21_000);
  assert.equal(sent.length, 3);
  assert.equal(sent[2]?.msg.title, "pi-volt is hot: 86 °C");
  hot(80.4, 56);
  clock.advance(600);
  assert.equal(engine.states()[0]?.value, 80.4);
});

test("alerts - quiet hours hold all but critical, and what still fires when they end goes out then", () => {
  const clock0 = new ManualClock();
  const d = new Date(clock0.now());
  const hhmm = (date: Date) =>
    `${String(date.getHours()).padStart(2, "0")}:${String(date.getMinutes()).padStart(2, "0")}`;
  const start = {
    start: d.getHours() * 60 + d.getMinutes(),
    end: (d.getHours() * 60 + d.getMinutes() + 60) % 1440,
  };
  assert.ok(hhmm(d).length === 5);
  const { clock, registry, sent, join } = setup("[alert.disk_full]\nfor = 0\n", {
    quietHours: start,
  });
  const a = join("pi-full");
  const b = join("pi-gone");
  const c = join("pi-brief");
  const full = (id: string, pct: number, seq: number) =>
    registry.setVitals(
      id,
      vitals(undefined, { disks: [{ mount: "/", usedBytes: pct, sizeBytes: 100 }] }),
      seq,
      clock.now(),
    );
  full(a, 95, 1);
  full(c, 95, 1);
  registry.setState(b, "down", "no heartbeat", clock.now());
  clock.advance(61_000);
  assert.deepEqual(
    sent.map((s) => s.msg.title),
    ["pi-gone is down"],
    "critical goes out in quiet hours; a warning waits",
  );
  full(c, 50, 2); // resolved while quiet: never told at all
  clock.advance(60 * 60_000);
  assert.deepEqual(
    sent.map((s) => s.msg.title),
    ["pi-gone is down", "pi-full's disk is 95 % full"],
  );
});

test("alerts - quiet hours hold even critical messages about a tutorial node, unless legacy_quiet_hours is off", () => {
  for (const legacyQuietHours of [true, false]) {
    const d = new Date(new ManualClock().now());
    const now = d.getHours() * 60 + d.getMinutes();
    const { clock, registry, sent, join, engine } = setup("", {
      quietHours: { start: now, end: (now + 60) % 1440 },
      legacyQuietHours,
    });
    const real = join("pi-real");
    const tutorial = join("pi-tutorial", { legacy: "true" }, "tutorial", true);
    registry.setState(real, "down", "connection lost", clock.now());
    registry.setState(tutorial, "down", "connection lost", clock.now());
    clock.advance(61_000);
    assert.deepEqual(
      engine.states().map((s) => [s.name, s.state, s.legacy]),
      [
        ["pi-real", "firing", false],
        ["pi-tutorial", "firing", true],
      ],
      "both fire (the events say so)",
    );
    assert.deepEqual(
      sent.map((m) => m.msg.title),
      legacyQuietHours ? ["pi-real is down"] : ["pi-real is down", "pi-tutorial is down"],
      `legacy_quiet_hours = ${legacyQuietHours}`,
    );
    // When quiet hours end, what still fires is told.
    clock.advance(60 * 60_000);
    assert.deepEqual(
      sent.map((m) => m.msg.title),
      ["pi-real is down", "pi-tutorial is down"],
    );
    engine.close();
  }
});

test("alerts - rules of your own: a selector, named channels, a repeat, your own title; version mismatch and switched-off stock rules", () => {
  const { clock, registry, sent, join, engine } = setup(
    [
      "[alert.web_load]",
      "when = cpu >= 90",
      "on = role=web",
      "channels = hook",
      "repeat = 1h",
      "severity = critical",
      "message = {node} is flat out ({value})",
      "[alert.agent_version]",
      "for = 0",
      "[alert.node_down]",
      "enabled = off",
      "",
    ].join("\n"),
  );
  const web = join("web-1", { role: "web" });
  const db = join("db-1", { role: "db" }, "0.9.0");
  for (const id of [web, db])
    registry.setVitals(
      id,
      vitals(undefined, { cpu: { total: 97, perCore: [97] } }),
      1,
      clock.now(),
    );
  clock.advance(600);
  const titles = sent.map((s) => `${s.channels.join("+")}: ${s.msg.title}`).sort();
  assert.deepEqual(titles, [
    "hook+mail: db-1 runs a different agent version than the primary",
    "hook: web-1 is flat out (97 %)",
  ]);
  assert.match(
    sent.find((s) => s.msg.rule === "agent_version")?.msg.text ?? "",
    /db-1 runs agent 0\.9\.0; the primary runs 1\.0\.0/,
  );
  clock.advance(3_600_000);
  assert.equal(sent.filter((s) => s.msg.rule === "web_load").length, 2, "told again after an hour");
  registry.setState(db, "down", "no heartbeat", clock.now());
  clock.advance(120_000);
  assert.equal(sent.filter((s) => s.msg.rule === "node_down").length, 0, "node_down is off");
  assert.equal(
    engine.states().filter((s) => s.state === "firing").length,
    2,
    "db-1's version alert holds while it is down; web-1 fires",
  );
});

test("alerts - [alert.NAME] mistakes are config errors with file and line", () => {
  const doc = parseIni(
    [
      "[alert.hot]",
      "when = temp >> 80",
      "[alert.x1]",
      "when = wattage > 3",
      "[alert.x2]",
      "when = cpu > 50",
      "for = soon",
      "colour = red",
      "[alert.x3]",
      "for = 1m",
      "[alert.Bad Name]",
      "when = cpu > 1",
      "[alert.x4]",
      "when = disk > 90",
      "severity = loud",
      "",
    ].join("\n"),
    "/etc/picluster/picluster.ini",
  ).doc;
  const { problems, rules } = readAlertSections(doc);
  const lines = problems.map((p) => `${p.where} ${p.message}`);
  assert.match(
    lines[0] ?? "",
    /^\/etc\/picluster\/picluster\.ini:2 \[alert\.hot\] when: expected METRIC OP NUMBER/,
  );
  assert.match(lines[1] ?? "", /:4 \[alert\.x1\] when: unknown metric "wattage" \(one of cpu, /);
  assert.match(lines[2] ?? "", /:7 \[alert\.x2\] for: expected a duration/);
  assert.match(
    lines[3] ?? "",
    /:8 \[alert\.x2\] unknown key "colour" \(an alert has when, for, clear, on/,
  );
  assert.match(lines[4] ?? "", /:9 \[alert\.x3\] has no "when"/);
  assert.match(lines[5] ?? "", /:11 \[alert\.Bad Name\]: a rule name is lowercase/);
  assert.match(
    lines[6] ?? "",
    /:15 \[alert\.x4\] severity: expected critical, warning or info, got "loud"/,
  );
  assert.equal(problems.length, 7);
  assert.equal(rules.node_down?.stock, true, "the stock rules stay");
  assert.equal(rules.hot, undefined);
});

test("alerts - a restarted primary takes up what was firing from the stored events: nothing told twice, the resolution still told", () => {
  const first = setup();
  const id = first.join("pi-01");
  first.registry.setState(id, "down", "no heartbeat", first.clock.now());
  first.clock.advance(61_000);
  assert.equal(first.sent.length, 1);
  const stored = first.seen
    .filter((e) => e.kind === "alert.firing" || e.kind === "alert.resolved")
    .map((e, i) => {
      const { kind, at, ...data } = e as ClusterEvent & { nodeId: string };
      return { id: i + 1, ts: at, kind, nodeId: data.nodeId, data };
    });
  first.engine.close();

  // The next primary: the same node, restored as down, and the stored events.
  const second = setup();
  const again = second.join("pi-01");
  assert.equal(again, id, "the same node id");
  second.engine.close();
  second.registry.setState(id, "down", "primary restarted", second.clock.now());
  const engine = new AlertEngine({
    rules: rulesFrom(""),
    settings: {
      enabled: true,
      channels: [],
      quietHours: undefined,
      legacyQuietHours: true,
      summaryAfter: 3,
    },
    registry: second.registry,
    events: second.events,
    clock: second.clock,
    log: silentLogger(),
    version: "1.0.0",
    notifier: {
      channelNames: ["hook"],
      deliver: (channels, msg) => second.sent.push({ channels, msg }),
    },
  });
  assert.equal(engine.restore(stored), 1);
  engine.start();
  second.clock.advance(5 * 60_000);
  assert.equal(second.sent.length, 0, "not told again");
  assert.equal(engine.states()[0]?.state, "firing");
  second.registry.connected(
    { id, name: "pi-01", labels: {}, address: "x", agentVersion: "1.0.0", legacy: false },
    second.clock.now(),
  );
  second.clock.advance(200);
  assert.deepEqual(
    second.sent.map((s) => s.msg.title),
    ["Resolved: pi-01 is back"],
  );
  engine.close();
});

test("alerts - an outage's backlog replayed at once is judged on its newest sample, and a sample from before the outage judges nothing", () => {
  const { clock, registry, sent, join, engine } = setup();
  const id = join("pi-replay");
  // 200 samples in one burst, one of them with the under-voltage bit: the newest is clear.
  for (let i = 0; i < 200; i++)
    registry.setVitals(id, vitals({ underVoltage: i === 100 }), i + 1, clock.now());
  clock.advance(1_000);
  assert.equal(sent.length, 0, "no alert from a sample in the middle of a replay");
  assert.deepEqual(engine.states(), []);

  // Its last sample before going down said under-voltage; back, nothing is judged on it.
  registry.setVitals(id, vitals({ underVoltage: true }), 300, clock.now());
  registry.setState(id, "down", "no heartbeat", clock.now());
  clock.advance(1_000);
  const firedBefore = sent.length;
  clock.advance(120_000);
  registry.connected(
    { id, name: "pi-replay", labels: {}, address: "x", agentVersion: "1.0.0", legacy: false },
    clock.now(),
  );
  clock.advance(1_000);
  assert.deepEqual(
    sent.slice(firedBefore).map((s) => s.msg.title),
    ["pi-replay is down", "Resolved: pi-replay is back"],
    "only the outage itself: the stale sample fires nothing",
  );
});

test("alerts - resolved in quiet hours, an alert told before them is told resolved when they end", () => {
  const clock0 = new ManualClock();
  const d = new Date(clock0.now() + 60 * 60_000);
  const from = d.getHours() * 60 + d.getMinutes();
  const { clock, registry, sent, join } = setup("[alert.disk_full]\nfor = 0\nclear = 0\n", {
    quietHours: { start: from, end: (from + 60) % 1440 },
  });
  const id = join("pi-full");
  const disk = (pct: number, seq: number) =>
    registry.setVitals(
      id,
      vitals(undefined, { disks: [{ mount: "/", usedBytes: pct, sizeBytes: 100 }] }),
      seq,
      clock.now(),
    );
  disk(95, 1);
  clock.advance(600);
  assert.deepEqual(
    sent.map((s) => s.msg.title),
    ["pi-full's disk is 95 % full"],
  );
  clock.advance(60 * 60_000); // into quiet hours
  disk(40, 2);
  clock.advance(600);
  assert.equal(sent.length, 1, "held while quiet");
  clock.advance(60 * 60_000);
  assert.deepEqual(
    sent.map((s) => s.msg.title),
    ["pi-full's disk is 95 % full", "Resolved: pi-full's disk has room again"],
  );
});

test("alerts - after a primary starts, nodes still down from before count only once the agents had time to reconnect", () => {
  const clock = new ManualClock();
  const events = new EventBus(silentLogger());
  const registry = new MemoryRegistry(events);
  registry.connected(
    { id: "n1", name: "pi-late", labels: {}, address: "x", agentVersion: "1.0.0", legacy: false },
    clock.now() - 3_600_000,
  );
  registry.restore(
    registry.list().map((n) => ({ ...n })),
    RESTART_REASON,
    clock.now(),
  );
  assert.equal(registry.get("n1")?.state, "down");
  const sent: AlertMessage[] = [];
  const engine = new AlertEngine({
    rules: rulesFrom(""),
    settings: {
      enabled: true,
      channels: [],
      quietHours: undefined,
      legacyQuietHours: true,
      summaryAfter: 3,
    },
    registry,
    events,
    clock,
    log: silentLogger(),
    version: "1.0.0",
    notifier: { channelNames: ["hook"], deliver: (_c, msg) => sent.push(msg) },
  });
  engine.start();
  clock.advance(STARTUP_GRACE_MS - 1_000);
  assert.equal(sent.length, 0, "not while agents may still be reconnecting");
  clock.advance(1_000 + 60_000 + 400);
  assert.deepEqual(
    sent.map((m) => m.title),
    ["pi-late is down"],
  );
  engine.close();
});

test("alerts - a rule's selector is checked at load: a state is refused with file and line", () => {
  const doc = parseIni("[alert.hot_web]\nwhen = temp > 70\non = role=web, alive\n", "a.ini").doc;
  const { problems } = readAlertSections(doc);
  assert.equal(problems.length, 1);
  assert.match(problems[0]?.where ?? "", /^a\.ini:3$/);
  assert.match(problems[0]?.message ?? "", /on: .*not a state/);
});

test("alerts - no data is no resolution, a suspect node keeps its figures, and a summary's node down again is told back first", () => {
  const { clock, registry, sent, join } = setup("[alert.cpu_temp]\nfor = 1m\n");
  const id = join("pi-warm");
  const hot = (celsius: number, seq: number) =>
    registry.setVitals(id, temp(celsius), seq, clock.now());
  hot(85, 1);
  clock.advance(30_000);
  registry.setState(id, "suspect", "no heartbeat for 3 s", clock.now()); // a missed heartbeat…
  clock.advance(1_000);
  registry.seen(id, clock.now()); // …and it is back: the minute still counts
  hot(86, 2);
  clock.advance(30_000);
  assert.deepEqual(
    sent.map((s) => s.msg.title),
    ["pi-warm is hot: 86 °C"],
  );
  hot(60, 3); // cooling…
  clock.advance(10_000);
  registry.setState(id, "down", "no heartbeat", clock.now()); // …then gone: no data
  clock.advance(5 * 60_000);
  assert.deepEqual(
    sent.map((s) => s.msg.title),
    ["pi-warm is hot: 86 °C", "pi-warm is down"],
    "never 'cooled down' on no data",
  );

  // Three nodes down at once (one summary); one comes back, then goes down again.
  const ids = ["x", "y", "z"].map((n) => join(`pi-${n}`));
  for (const n of ids) registry.setState(n, "down", "no heartbeat", clock.now());
  clock.advance(60_400);
  assert.equal(sent.at(-1)?.msg.title, "3 nodes are down");
  const first = ids[0] ?? "";
  registry.connected(
    { id: first, name: "pi-x", labels: {}, address: "x", agentVersion: "1.0.0", legacy: false },
    clock.now(),
  );
  clock.advance(1_000);
  registry.setState(first, "down", "no heartbeat", clock.now());
  clock.advance(60_400);
  assert.deepEqual(
    sent.slice(-2).map((s) => s.msg.title),
    ["Resolved: pi-x is back", "pi-x is down"],
  );
});

test("alerts - a removed node's alerts end: what fired resolves as an event with no message, a pending one never fires, the rest of its summary is told back without it", () => {
  const { clock, registry, sent, join, alertEvents, engine } = setup();
  const [a, b, c, d] = ["pi-1", "pi-2", "pi-3", "pi-4"].map((n) => join(n));
  for (const id of [a, b, c]) registry.setState(id as string, "down", "lost", clock.now());
  clock.advance(61_000);
  assert.deepEqual(
    sent.map((s) => s.msg.title),
    ["3 nodes are down"],
  );
  registry.setState(d as string, "down", "lost", clock.now());
  clock.advance(1_000);
  assert.equal(engine.states().find((s) => s.nodeId === d)?.state, "pending");

  // pi-1 is removed (it was firing, part of the summary); pi-4 too (pending).
  assert.equal(engine.forget(a as string), 1);
  registry.remove(a as string);
  assert.equal(engine.forget(d as string), 0);
  registry.remove(d as string);
  assert.deepEqual(
    engine.states().map((s) => s.name),
    ["pi-2", "pi-3"],
  );
  assert.deepEqual(
    alertEvents().slice(-1),
    ["alert.resolved:node_down:pi-1"],
    "stored and streamed",
  );
  clock.advance(10 * 60_000);
  assert.equal(sent.length, 1, "nothing told about the removed nodes: no resolution, no firing");

  // The other two come back: told back together, without pi-1.
  for (const [id, name] of [
    [b, "pi-2"],
    [c, "pi-3"],
  ] as const)
    registry.connected(
      { id: id as string, name, labels: {}, address: "x", agentVersion: "1.0.0", legacy: false },
      clock.now(),
    );
  clock.advance(1_000);
  assert.deepEqual(
    sent.slice(1).map((s) => s.msg.title),
    ["Resolved: pi-2 is back", "Resolved: pi-3 is back"],
    "(two are below summary_after: one by one)",
  );
});
