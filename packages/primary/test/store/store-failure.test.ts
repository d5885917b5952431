/**
 * The store on a disk that fills up: a real SQLite file on a tmpfs the test
 * mounts and fills (skipped without root).
 */
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { silentLogger } from "@picluster/common";
import { fillDisk, ManualClock, mountTmpfs } from "@picluster/common/testing";
import Database from "better-sqlite3";
import type { ClusterEvent } from "../../src/events.js";
import type { NodeRecord } from "../../src/registry.js";
import { type LiveEvent, Store, StoreError, type StoreHealth } from "../../src/store/store.js";
import { vitals } from "../support/vitals.js";

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const DAY = 86_400_000;
const RETRY_MS = 1_000;

function node(id: string): NodeRecord {
  return {
    id,
    name: id,
    labels: {},
    address: "10.0.0.1:5000",
    state: "alive",
    stateSince: T0,
    stateReason: "connected",
    firstSeen: T0,
    lastSeen: T0,
    agentVersion: "0.1.0",
    legacy: false,
    lastSeq: 0,
    dropped: 0,
  };
}

function stateEvent(at: number, to: "alive" | "down"): ClusterEvent {
  return { kind: "node.state", at, nodeId: "n1", name: "n1", from: undefined, to, reason: "test" };
}

/** Settle a promise into what it did, so a test can look without awaiting forever. */
function outcome(p: Promise<void>): { state: "pending" | "resolved" | StoreError } {
  const o: { state: "pending" | "resolved" | StoreError } = { state: "pending" };
  p.then(
    () => {
      o.state = "resolved";
    },
    (err: unknown) => {
      o.state = err instanceof StoreError ? err : new StoreError("E_INTERNAL", String(err));
    },
  );
  return o;
}

function storeOnTmpfs(t: Parameters<typeof mountTmpfs>[0], dir: string, clock: ManualClock) {
  const file = join(dir, "picluster.db");
  const store = new Store({
    file,
    clock,
    log: silentLogger(),
    retention: { rawMs: 2 * DAY, minuteMs: 30 * DAY, hourMs: 365 * DAY },
    retryMs: RETRY_MS,
  }).open();
  t.after(() => store.close());
  const told: LiveEvent[] = [];
  const health: StoreHealth[] = [];
  store.onEvents((events) => told.push(...events));
  store.onHealth((h) => health.push(h));
  store.start();
  return { store, file, told, health };
}

test("store - a commit on a full disk rejects its samples, keeps its events and node rows, refuses new samples at once, tells events live, and commits what waited once there is room", async (t) => {
  const mount = mountTmpfs(t, "2m");
  if ("skip" in mount) return t.skip(mount.skip);
  const clock = new ManualClock(T0);
  const { store, file, told, health } = storeOnTmpfs(t, mount.dir, clock);
  const n = node("n1");
  const first = store.addVitals(n, T0, 1, vitals());
  clock.advance(100);
  await first;

  const filler = join(mount.dir, "filler");
  fillDisk(filler);
  store.addEvent(stateEvent(T0 + 200, "down"), { ...n, state: "down" });
  const second = outcome(store.addVitals(n, T0 + 300, 2, vitals()));
  clock.advance(100);
  await Promise.resolve();
  assert.ok(second.state instanceof StoreError, "the sample in the failed commit is rejected");
  assert.equal(second.state.code, "E_STORE_FULL");
  assert.equal(health.length, 1, "told once that it stopped writing");
  const failing = store.health;
  assert.equal(failing.ok, false);
  assert.equal(failing.ok === false && failing.cause, "disk_full");
  assert.equal(failing.ok === false && failing.eventsWaiting, 1);
  assert.deepEqual(
    told.map((e) => [e.kind, e.id]),
    [["node.state", null]],
    "the event is told at once, without an id",
  );

  const third = outcome(store.addVitals(n, T0 + 400, 3, vitals()));
  await Promise.resolve();
  assert.ok(third.state instanceof StoreError, "refused at once, not queued behind the failure");
  assert.equal(third.state.code, "E_STORE_FULL");
  store.addEvent(stateEvent(T0 + 500, "alive"), n);
  assert.equal(told.length, 2, "an event while failing is told at once");
  assert.equal(told[1]?.id, null);

  clock.advance(RETRY_MS);
  assert.equal(store.health.ok, false, "still full: the retry failed");
  assert.equal(health.length, 1, "and said nothing new");

  rmSync(filler);
  clock.advance(RETRY_MS);
  assert.equal(store.health.ok, true, "the retry committed");
  assert.deepEqual(health.at(-1), { ok: true });
  assert.equal(told.length, 2, "events told while failing are not told again");
  assert.deepEqual(
    store.events({ limit: 10 }).map((e) => [e.kind, e.data.to]),
    [
      ["node.state", "alive"],
      ["node.state", "down"],
    ],
    "the events that waited are stored, in order",
  );
  // The agent sends 2 and 3 again: stored once each, acknowledged after commit.
  const replays = [2, 3].map((seq) => outcome(store.addVitals(n, T0 + seq * 100, seq, vitals())));
  clock.advance(100);
  await Promise.resolve();
  assert.deepEqual(
    replays.map((r) => r.state),
    ["resolved", "resolved"],
  );
  const reader = new Database(file, { readonly: true });
  t.after(() => reader.close());
  assert.deepEqual(
    (reader.prepare("SELECT seq FROM vitals_raw ORDER BY seq").all() as Array<{ seq: number }>).map(
      (r) => r.seq,
    ),
    [1, 2, 3],
  );
  assert.equal(
    (
      reader.prepare("SELECT state FROM nodes WHERE id = 'n1'").get() as
        | { state: string }
        | undefined
    )?.state,
    "alive",
    "the node row that waited is stored (as it was last)",
  );
});

test("store - failing with nothing but samples: the retry still writes, so it notices the room coming back", async (t) => {
  const mount = mountTmpfs(t, "2m");
  if ("skip" in mount) return t.skip(mount.skip);
  const clock = new ManualClock(T0);
  const { store, health } = storeOnTmpfs(t, mount.dir, clock);
  const filler = join(mount.dir, "filler");
  fillDisk(filler);
  const sample = outcome(store.addVitals(node("n1"), T0, 1, vitals()));
  clock.advance(100);
  await Promise.resolve();
  assert.ok(sample.state instanceof StoreError);
  assert.equal(store.health.ok, false);
  clock.advance(RETRY_MS * 3);
  assert.equal(store.health.ok, false, "full: every retry fails");
  rmSync(filler);
  clock.advance(RETRY_MS);
  assert.equal(store.health.ok, true);
  assert.deepEqual(
    health.map((h) => h.ok),
    [false, true],
  );
  store.close();
  assert.equal(clock.pending, 0, "no retry timer left after close");
});
