import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { createLogger, JOIN_IDENTITY_PREFIX, parseJoinToken } from "@picluster/common";
import { ManualClock, waitFor } from "@picluster/common/testing";
import { CredentialStore } from "../src/credentials.js";
import { AgentListener, REFUSAL_WINDOW_MS } from "../src/listener.js";

type Context = { after(fn: () => void | Promise<void>): void };

/** A real listener on 127.0.0.1 whose refusal windows run on a manual clock; logs kept as parsed records. */
async function listener(t: Context) {
  const dir = mkdtempSync(join(tmpdir(), "picluster-listener-"));
  const clock = new ManualClock();
  const credentials = new CredentialStore(join(dir, "picluster.db"), clock).load();
  const records: Array<Record<string, unknown>> = [];
  const log = createLogger(
    { write: (line) => records.push(JSON.parse(line) as Record<string, unknown>) },
    { level: "info" },
  );
  const l = new AgentListener({
    host: "127.0.0.1",
    port: 0,
    credentials,
    handshakeTimeoutMs: 5_000,
    maxHandshakesPerAddress: 64,
    log,
    clock,
    onConnection: (socket) => socket.destroy(),
  });
  const { port } = await l.start();
  t.after(async () => {
    await l.close();
    credentials.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // A known identity with a wrong key: one refusal per connection ("wrong key for its credential").
  const identity = `${JOIN_IDENTITY_PREFIX}${parseJoinToken(credentials.addToken("pi-01")).id}`;
  const refusedOnce = () =>
    new Promise<void>((resolve, reject) => {
      const s = tlsConnect({
        host: "127.0.0.1",
        port,
        minVersion: "TLSv1.3",
        pskCallback: () => ({ identity, psk: randomBytes(32) }),
        checkServerIdentity: () => undefined,
      });
      s.once("secureConnect", () => reject(new Error("a wrong key completed a handshake")));
      s.once("error", () => resolve());
    });
  const refusals = () => records.filter((r) => r.msg === "refused a connection");
  const summaries = () => records.filter((r) => r.msg === "refusals not logged individually");
  return { l, clock, records, refusedOnce, refusals, summaries };
}

test("listener - refused handshakes past the first five in a window are counted, and the count is logged when the window closes even if no refusal follows", async (t) => {
  const { clock, refusedOnce, refusals, summaries } = await listener(t);
  for (let i = 0; i < 8; i++) await refusedOnce();
  await waitFor(() => refusals().length === 5, "five refusals logged one by one", 2_000);
  assert.equal(summaries().length, 0, "nothing summed up while the window is open");
  assert.deepEqual(
    refusals().map((r) => [r.peer, r.reason]),
    Array.from({ length: 5 }, () => ["127.0.0.1", "wrong key for its credential"]),
  );
  // The flood stopped: the window's end alone tells the count.
  clock.advance(REFUSAL_WINDOW_MS);
  assert.deepEqual(
    summaries().map((r) => [r.level, r.peer, r.suppressed, r.windowMs]),
    [["warn", "127.0.0.1", 3, REFUSAL_WINDOW_MS]],
  );
  assert.equal(clock.pending, 0, "no timer left once the count is told");
  clock.advance(REFUSAL_WINDOW_MS);
  assert.equal(summaries().length, 1, "told once");
});

test("listener - closing the listener tells what the open window suppressed and leaves no timer", async (t) => {
  const { l, clock, refusedOnce, refusals, summaries } = await listener(t);
  for (let i = 0; i < 7; i++) await refusedOnce();
  await waitFor(() => refusals().length === 5, "five refusals logged one by one", 2_000);
  assert.equal(clock.pending, 1, "the window's end is scheduled");
  await l.close();
  assert.deepEqual(
    summaries().map((r) => [r.peer, r.suppressed]),
    [["127.0.0.1", 2]],
  );
  assert.equal(clock.pending, 0);
});
