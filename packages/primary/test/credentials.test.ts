import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { AuthError, JOIN_IDENTITY_PREFIX, parseJoinToken } from "@picluster/common";
import { ManualClock } from "@picluster/common/testing";
import { CredentialStore } from "../src/credentials.js";

type Context = { after(fn: () => void): void };

function store(t: Context) {
  const dir = mkdtempSync(join(tmpdir(), "picluster-cred-"));
  const clock = new ManualClock();
  const file = join(dir, "picluster.db");
  const opened: CredentialStore[] = [];
  const open = (opts = {}) => {
    const s = new CredentialStore(file, clock, opts).load();
    opened.push(s);
    return s;
  };
  t.after(() => {
    for (const s of opened) s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, file, clock, open, store: open() };
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
  assert.equal(
    code(() => s.redeem(token.id, "node-b")),
    "E_TOKEN_USED",
  );
});

test("credentials - a used token presented again with the same node id gets a fresh key; the earlier key stops working", (t) => {
  const { store: s, open } = store(t);
  const token = parseJoinToken(s.addToken("pi-01"));
  const first = s.redeem(token.id, "node-a");
  const second = s.redeem(token.id, "node-a");
  assert.notEqual(second.identity, first.identity);
  assert.notDeepEqual(second.key, first.key, "the second redeemer never sees the first one's key");
  assert.equal(second.superseded, first.identity);
  assert.equal(s.lookup(first.identity), undefined, "the superseded key no longer connects");
  assert.equal(s.isRevoked(first.identity), true, "sessions using it are cut");
  assert.equal(s.lookup(second.identity)?.kind, "node", "the last redeemer's key works");
  assert.deepEqual(
    s.list().map((c) => [c.name, c.status]),
    [["pi-01", "active"]],
    "one credential for the node, not one per attempt",
  );
  const other = open();
  assert.equal(
    other.lookup(first.identity),
    undefined,
    "the earlier key is gone from the file too",
  );
  assert.equal(other.lookup(second.identity)?.kind, "node");
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
  const { store: running, open } = store(t);
  const token = parseJoinToken(running.addToken("pi-03"));
  const cred = running.redeem(token.id, "node-c");
  const cli = open();
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
  const { store: s, open } = store(t);
  const g0 = s.generation;
  s.addToken("pi-01");
  assert.equal(s.generation, g0 + 1);
  open().revoke("pi-01");
  s.lookup("n-unknown");
  assert.equal(
    s.generation,
    g0 + 2,
    "a lookup that re-read the file counts, so a poller cannot miss a revoke",
  );
});

test("credentials - the database and its WAL files are readable by their owner only", (t) => {
  const { store: s, file } = store(t);
  s.addToken("pi-01");
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    assert.equal(statSync(f).mode & 0o777, 0o600, f);
  }
});

test("credentials - an earlier version's credentials.json is imported once and renamed", (t) => {
  const { dir, open } = store(t);
  const json = join(dir, "credentials.json");
  const key = Buffer.alloc(32, 7).toString("base64url");
  writeFileSync(
    json,
    JSON.stringify({
      version: 1,
      tokens: [
        { id: "0123456789abcdef", secret: key, name: "pi-new", createdAt: 0, expiresAt: 1e15 },
      ],
      credentials: [
        { identity: "n-1", key, name: "pi-old", nodeId: "node-old", createdAt: 0 },
        { identity: "n-2", key, name: "pi-gone", createdAt: 0, revokedAt: 5 },
      ],
    }),
  );
  const s = open({ importFrom: json });
  assert.equal(existsSync(json), false);
  assert.equal(existsSync(`${json}.imported`), true);
  assert.deepEqual(s.lookup("n-1"), {
    kind: "node",
    identity: "n-1",
    name: "pi-old",
    nodeId: "node-old",
    key: Buffer.alloc(32, 7),
  });
  assert.equal(s.isRevoked("n-2"), true);
  assert.equal(s.lookup(`${JOIN_IDENTITY_PREFIX}0123456789abcdef`)?.kind, "join");
  // A file that appears again later is not imported over live data.
  writeFileSync(json, readFileSync(`${json}.imported`));
  const again = open({ importFrom: json });
  assert.equal(existsSync(json), true, "left alone");
  assert.deepEqual(
    again.list().map((c) => c.name),
    ["pi-old", "pi-gone", "pi-new"],
  );
});

test("credentials - a corrupt credentials.json stops the import with an error naming the file", (t) => {
  const { dir, open } = store(t);
  const json = join(dir, "credentials.json");
  writeFileSync(json, "{ not json");
  assert.throws(
    () => open({ importFrom: json }),
    (err: unknown) =>
      err instanceof AuthError &&
      err.code === "E_BAD_CREDENTIALS_FILE" &&
      err.message.includes(json),
  );
});

test("credentials - two processes adding nodes at the same time lose none of them", async (t) => {
  const { file, store: s } = store(t);
  const module = new URL("../src/credentials.js", import.meta.url).href;
  const common = import.meta.resolve("@picluster/common");
  const writer = (prefix: string) =>
    new Promise<number>((resolve, reject) => {
      const script = `
        const { CredentialStore } = await import(${JSON.stringify(module)});
        const { systemClock } = await import(${JSON.stringify(common)});
        const s = new CredentialStore(${JSON.stringify(file)}, systemClock).load();
        for (let i = 0; i < 40; i++) s.addToken("${prefix}-" + i);
        s.close();`;
      const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
        stdio: ["ignore", "ignore", "inherit"],
      });
      child.once("error", reject);
      child.once("exit", (code) => resolve(code ?? -1));
    });
  // Meanwhile this process (the running primary) writes too.
  const both = Promise.all([writer("a"), writer("b")]);
  for (let i = 0; i < 40; i++) {
    s.addToken(`c-${i}`);
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(await both, [0, 0]);
  s.reloadIfChanged();
  const names = new Set(s.list().map((c) => c.name));
  assert.equal(names.size, 120, "every token from every writer is there");
  for (const p of ["a", "b", "c"]) assert.ok(names.has(`${p}-39`));
});

test("credentials - revoking a removed node's id revokes its credential and the token it used, not a new token for its name", (t) => {
  const { store: s } = store(t);
  const used = parseJoinToken(s.addToken("pi-01"));
  const cred = s.redeem(used.id, "node-a");
  const other = s.redeem(parseJoinToken(s.addToken("pi-02")).id, "node-b");
  assert.deepEqual(s.revokeNode("node-a", "pi-01"), [cred.identity]);
  assert.equal(s.lookup(cred.identity), undefined);
  assert.equal(s.lookup(`${JOIN_IDENTITY_PREFIX}${used.id}`), undefined, "its used token is gone");
  assert.equal(s.lookup(other.identity)?.kind, "node", "other nodes keep theirs");
  // Joining the name again (a new machine): removing the old node leaves the new token alone.
  const fresh = parseJoinToken(s.addToken("pi-01"));
  assert.deepEqual(s.revokeNode("node-a", "pi-01"), [], "nothing left to revoke");
  assert.equal(s.lookup(`${JOIN_IDENTITY_PREFIX}${fresh.id}`)?.kind, "join");
});
