import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { AuthError, JOIN_IDENTITY_PREFIX, parseJoinToken } from "@picluster/common";
import { ManualClock } from "@picluster/common/testing";
import { CredentialStore } from "../src/credentials.js";

function store(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), "picluster-cred-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const clock = new ManualClock();
  const file = join(dir, "credentials.json");
  return { file, clock, store: new CredentialStore(file, clock).load() };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AuthError);
    return err.code;
  }
  return "no error";
}

test("credentials - a join token opens a join session once and is exchanged for the node's own key", (t) => {
  const { store: s, file } = store(t);
  const token = parseJoinToken(s.addToken("pi-01"));
  assert.equal(statSync(file).mode & 0o777, 0o600, "the store is readable by its owner only");
  const join = s.lookup(`${JOIN_IDENTITY_PREFIX}${token.id}`);
  assert.equal(join?.kind, "join");
  assert.deepEqual(join?.key, token.secret);
  const cred = s.redeem(token.id, "node-a");
  assert.equal(cred.name, "pi-01");
  assert.deepEqual(s.lookup(cred.identity), {
    kind: "node",
    identity: cred.identity,
    name: "pi-01",
    nodeId: "node-a",
    key: cred.key,
  });
  assert.deepEqual(
    s.redeem(token.id, "node-a"),
    cred,
    "the same node presenting the token again gets the same credential",
  );
  assert.equal(
    code(() => s.redeem(token.id, "node-b")),
    "E_TOKEN_USED",
  );
});

test("credentials - revoking a node makes its key unknown and its name reusable", (t) => {
  const { store: s } = store(t);
  const token = parseJoinToken(s.addToken("pi-01"));
  const cred = s.redeem(token.id, "node-a");
  assert.equal(
    code(() => s.addToken("pi-01")),
    "E_NODE_EXISTS",
  );
  assert.deepEqual(s.revoke("pi-01"), [cred.identity]);
  assert.equal(s.lookup(cred.identity), undefined);
  assert.equal(s.isRevoked(cred.identity), true);
  assert.equal(
    s.lookup(`${JOIN_IDENTITY_PREFIX}${token.id}`),
    undefined,
    "the used token cannot bring it back",
  );
  assert.match(s.addToken("pi-01"), /^pcj1\./);
  assert.equal(
    code(() => s.revoke("nobody")),
    "E_NO_SUCH_NODE",
  );
});

test("credentials - an expired token is refused", (t) => {
  const { store: s, clock } = store(t);
  const token = parseJoinToken(s.addToken("pi-02", 60_000));
  clock.advance(60_000);
  assert.equal(s.lookup(`${JOIN_IDENTITY_PREFIX}${token.id}`), undefined);
  assert.equal(
    code(() => s.redeem(token.id, "x")),
    "E_TOKEN_INVALID",
  );
});

test("credentials - a change by another process (the CLI) is picked up on reload", (t) => {
  const { store: running, file, clock } = store(t);
  const token = parseJoinToken(running.addToken("pi-03"));
  const cred = running.redeem(token.id, "node-c");
  const cli = new CredentialStore(file, clock).load();
  cli.revoke("pi-03");
  assert.equal(running.reloadIfChanged(), true);
  assert.equal(running.isRevoked(cred.identity), true);
  assert.equal(running.reloadIfChanged(), false, "nothing new the second time");
});

test("credentials - bad names and bad tokens are refused with clear codes", (t) => {
  const { store: s } = store(t);
  assert.equal(
    code(() => s.addToken("has space")),
    "E_BAD_NAME",
  );
  assert.equal(
    code(() => parseJoinToken("pcj1.nothex.abc")),
    "E_BAD_TOKEN",
  );
  assert.equal(
    code(() => parseJoinToken("hello")),
    "E_BAD_TOKEN",
  );
});

test("credentials - a token cannot take over a node id that another node's credential holds", (t) => {
  const { store: s } = store(t);
  const first = parseJoinToken(s.addToken("pi-01"));
  s.redeem(first.id, "node-a");
  const second = parseJoinToken(s.addToken("evil"));
  assert.equal(
    code(() => s.redeem(second.id, "node-a")),
    "E_NODE_ID_TAKEN",
  );
});

test("credentials - once the node connects with its own key, the token that produced it is gone", (t) => {
  const { store: s } = store(t);
  const token = parseJoinToken(s.addToken("pi-01"));
  const cred = s.redeem(token.id, "node-a");
  assert.equal(
    s.lookup(`${JOIN_IDENTITY_PREFIX}${token.id}`)?.kind,
    "join",
    "still usable until confirmed",
  );
  s.confirm(cred.identity);
  s.flushConfirmed();
  assert.equal(s.lookup(`${JOIN_IDENTITY_PREFIX}${token.id}`), undefined);
  assert.equal(
    code(() => s.redeem(token.id, "node-a")),
    "E_TOKEN_INVALID",
  );
});

test("credentials - every change seen or made bumps the generation", (t) => {
  const { store: s, file, clock } = store(t);
  const g0 = s.generation;
  s.addToken("pi-01");
  assert.equal(s.generation, g0 + 1);
  new CredentialStore(file, clock).load().revoke("pi-01");
  s.lookup("n-unknown");
  assert.equal(
    s.generation,
    g0 + 2,
    "a lookup that re-read the file counts, so a poller cannot miss a revoke",
  );
});
