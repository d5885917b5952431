import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { systemClock } from "@picluster/common";
import { deadline, waitFor } from "@picluster/common/testing";
import { CredentialStore } from "@picluster/primary";
import Database from "better-sqlite3";
import { killed, scratchDir, spawnPrimary, startAgent } from "./support/cluster.js";

const AGENTS = 50;
const KILLS = 10;

test("crash - kill -9 the primary ten times during ingest from 50 agents: the database opens clean and every acked sample is there exactly once", async (t) => {
  const dataDir = scratchDir(t, "picluster-crash-");
  const store = new CredentialStore(join(dataDir, "picluster.db"), systemClock).load();
  let primary = spawnPrimary(dataDir, 0);
  t.after(() => killed(primary.child));
  const port = await primary.port;
  const agents = Array.from({ length: AGENTS }, (_, i) =>
    startAgent(t, { port, addNode: (name) => store.addToken(name) }, `crash-${i}`, {
      "agent.reconnect_max": "1s",
    }),
  );
  const acked = () => agents.reduce((sum, a) => sum + a.agent.outbox.ackedUpTo, 0);
  const dbFile = join(dataDir, "picluster.db");

  for (let round = 1; round <= KILLS; round++) {
    const before = acked();
    await waitFor(
      () => agents.every((a) => a.agent.link.state === "ready"),
      `round ${round}: all agents connected`,
      15_000,
    );
    await waitFor(() => acked() >= before + AGENTS, `round ${round}: samples acknowledged`, 15_000);
    await killed(primary.child);
    // The file opens and is consistent after every crash (the WAL is replayed on open).
    const db = new Database(dbFile);
    assert.deepEqual(
      db.pragma("integrity_check"),
      [{ integrity_check: "ok" }],
      `round ${round}: integrity`,
    );
    db.close();
    primary = spawnPrimary(dataDir, port);
    await primary.port;
  }

  await waitFor(
    () => agents.every((a) => a.agent.link.state === "ready"),
    "all agents connected at the end",
    15_000,
  );
  await waitFor(
    () => agents.every((a) => a.agent.outbox.size === 0),
    "every sample acknowledged at the end",
    15_000,
  );
  for (const a of agents) await a.stop();
  primary.child.kill("SIGTERM");
  await deadline(
    new Promise<void>((resolve) => primary.child.once("exit", () => resolve())),
    3_000,
    "primary stops",
  );

  const db = new Database(dbFile, { readonly: true });
  t.after(() => db.close());
  let total = 0;
  for (const a of agents) {
    const upTo = a.agent.outbox.ackedUpTo;
    const row = db
      .prepare(
        "SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi FROM vitals_raw WHERE node_id = ? AND seq <= ?",
      )
      .get(a.agent.id, upTo) as { n: number; d: number; lo: number; hi: number };
    assert.equal(row.n, row.d, `${a.agent.id}: no sample twice`);
    assert.equal(row.hi, upTo, `${a.agent.id}: the last acked sample is stored`);
    assert.equal(
      row.n,
      row.hi - row.lo + 1,
      `${a.agent.id}: no acked sample missing (seqs ${row.lo}..${row.hi})`,
    );
    assert.equal(row.lo, 1, `${a.agent.id}: from the first sample on`);
    total += row.n;
  }
  t.diagnostic(
    `${total} acked samples from ${AGENTS} agents, all present once after ${KILLS} kills`,
  );
});
