/**
 * Credentials for thousands of simulated nodes, issued by the primary's own
 * CredentialStore: a join token per node (addToken), redeemed at once for the
 * node's credential (redeem) and confirmed (confirm), exactly as `node add`,
 * a first join and the node's first connection with its own credential do.
 * The primary under test therefore sees established nodes reconnecting (as
 * after a primary restart), not 10 000 first contacts.
 *
 * The store is a SQLite file (the primary's picluster.db, credentials
 * only); it is closed (checkpointed) and copied into each data directory.
 * Every credential is then looked up through a fresh CredentialStore, so a
 * change of format fails loudly instead of benchmarking a primary that
 * refuses every node.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { parseJoinToken, systemClock, writePrivateFile } from "@picluster/common";
import { CredentialStore } from "@picluster/primary";
import { type CredentialsFile, type SimCredential, simName } from "./ipc.js";

export interface IssuedCredentials {
  /** The primary's store (picluster.db) holding the credentials: copy it into a data dir. */
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
  const storeFile = join(dir, "picluster.db");
  const store = new CredentialStore(storeFile, systemClock).load();
  for (let i = 0; i < count; i++) {
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
    if ((i + 1) % 2_000 === 0) progress(`issued ${i + 1}/${count} credentials`);
  }
  store.flushConfirmed();
  store.close();

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
  check.close();
  const simFile = join(dir, "sim-credentials.json");
  writePrivateFile(simFile, JSON.stringify({ agents } satisfies CredentialsFile));
  return { storeFile, simFile, count };
}
