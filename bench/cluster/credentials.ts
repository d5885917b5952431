/**
 * Credentials for thousands of simulated nodes, issued by the primary's own
 * CredentialStore: a join token per node (addToken), redeemed at once for the
 * node's credential (redeem) and confirmed (confirm), exactly as `node add`,
 * a first join and the node's first connection with its own credential do.
 * The primary under test therefore sees established nodes reconnecting (as
 * after a primary restart), not 10 000 first contacts: each first contact
 * rewrites the whole credential file (confirm), which is the subject of a
 * separate finding, not of the steady-state load.
 *
 * The store rewrites its whole file on every change, so issuing 10 000 in one
 * store is quadratic (2 000 took 11 s here; 10 000 would take minutes). They
 * are issued in shards of SHARD_SIZE nodes, one store each, and the shard
 * files are concatenated into one. That relies on the file being
 * `{version, tokens[], credentials[]}`, so the merged file is then loaded by
 * a fresh CredentialStore and every credential is looked up through it: if
 * the format ever changes, this fails loudly instead of benchmarking a
 * primary that refuses every node.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseJoinToken, systemClock, writePrivateFile } from "@picluster/common";
import { CredentialStore } from "@picluster/primary";
import { type CredentialsFile, type SimCredential, simName } from "./ipc.js";

const SHARD_SIZE = 100;

export interface IssuedCredentials {
  /** The primary's credentials.json: copy it into a data dir. */
  storeFile: string;
  /** The simulator's list of names, node ids, identities and keys. */
  simFile: string;
  count: number;
}

export function issueCredentials(
  dir: string,
  count: number,
  progress: (message: string) => void,
): IssuedCredentials {
  const agents: SimCredential[] = [];
  const shardFiles: string[] = [];
  for (let first = 0; first < count; first += SHARD_SIZE) {
    const file = join(dir, `shard-${shardFiles.length}.json`);
    shardFiles.push(file);
    const store = new CredentialStore(file, systemClock);
    store.init();
    for (let i = first; i < Math.min(count, first + SHARD_SIZE); i++) {
      const name = simName(i);
      const nodeId = randomBytes(16).toString("hex");
      const token = parseJoinToken(store.addToken(name));
      const issued = store.redeem(token.id, nodeId);
      // As the node's first connection with its own credential would: the token is deleted.
      store.confirm(issued.identity);
      agents.push({
        name,
        nodeId,
        identity: issued.identity,
        key: issued.key.toString("base64url"),
      });
    }
    if (shardFiles.length % 20 === 0) progress(`issued ${agents.length}/${count} credentials`);
  }

  const merged: Record<string, unknown> = {};
  for (const file of shardFiles) {
    const shard = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    for (const [key, value] of Object.entries(shard)) {
      const have = merged[key];
      if (Array.isArray(value)) merged[key] = [...(Array.isArray(have) ? have : []), ...value];
      else if (have === undefined) merged[key] = value;
      else if (have !== value)
        throw new Error(
          `credential shards disagree on "${key}": ${String(have)} vs ${String(value)}`,
        );
    }
    rmSync(file);
  }
  const storeFile = join(dir, "credentials.json");
  writePrivateFile(storeFile, `${JSON.stringify(merged)}\n`);

  const check = new CredentialStore(storeFile, systemClock).load();
  for (const a of agents) {
    const found = check.lookup(a.identity);
    if (
      found?.kind !== "node" ||
      found.name !== a.name ||
      found.nodeId !== a.nodeId ||
      found.key.toString("base64url") !== a.key
    ) {
      throw new Error(`merged credential store does not resolve ${a.identity} (${a.name})`);
    }
  }
  const simFile = join(dir, "sim-credentials.json");
  writePrivateFile(simFile, JSON.stringify({ agents } satisfies CredentialsFile));
  return { storeFile, simFile, count };
}
