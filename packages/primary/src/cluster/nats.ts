/**
 * The scale-out mode's connection to NATS: options from `[cluster]`, and the
 * JetStream key-value buckets picluster keeps its shared state in.
 */
import { readFileSync } from "node:fs";
import { type KV, Kvm, type KvOptions, type KvWatchEntry } from "@nats-io/kv";
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
} from "@nats-io/transport-node";
import { type Config, PiclusterError } from "@picluster/common";

export class ClusterError extends PiclusterError {}

/** Buckets, one per kind of shared state (names are JetStream stream names: KV_<bucket>). */
export const BUCKETS = {
  presence: "picluster-presence",
  leader: "picluster-leader",
  credentials: "picluster-credentials",
  tokens: "picluster-tokens",
  nodes: "picluster-nodes",
  alerts: "picluster-alerts",
} as const;

type ClusterConfig = Config["cluster"];

/**
 * How many copies JetStream keeps: `[cluster] replicas`, else 1 with one
 * server named and 3 with more (the servers named may be only some of the
 * cluster's; two copies would stop at the loss of either).
 */
export function replicasFor(cfg: ClusterConfig): number {
  if (cfg.replicas > 0) return cfg.replicas;
  return cfg.nats.length <= 1 ? 1 : 3;
}

/** Connection options from `[cluster]`; files that cannot be read are named. */
export function connectionOptions(cfg: ClusterConfig, name: string): ConnectionOptions {
  const read = (file: string, key: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch (err) {
      throw new ClusterError(
        "E_CONFIG",
        `[cluster] ${key} = ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
  };
  const opts: ConnectionOptions = {
    servers: [...cfg.nats],
    name: `picluster-primary ${name}`,
    // A primary keeps trying for as long as it runs; its agents stay connected meanwhile.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 250,
    pingInterval: 5_000,
    // A first connection attempt (and a stopping primary waiting on one) gives up after this.
    timeout: 5_000,
  };
  if (cfg.creds !== "")
    opts.authenticator = credsAuthenticator(new TextEncoder().encode(read(cfg.creds, "creds")));
  else if (cfg.user !== "") {
    opts.user = cfg.user;
    if (cfg.password_file !== "")
      opts.pass = (read(cfg.password_file, "password_file").split("\n")[0] ?? "").trim();
  }
  if (cfg.tls_ca !== "" || cfg.tls_cert !== "") {
    opts.tls = {
      ...(cfg.tls_ca === "" ? {} : { ca: read(cfg.tls_ca, "tls_ca") }),
      ...(cfg.tls_cert === "" ? {} : { cert: read(cfg.tls_cert, "tls_cert") }),
      ...(cfg.tls_key === "" ? {} : { key: read(cfg.tls_key, "tls_key") }),
    };
  }
  return opts;
}

export async function connectNats(cfg: ClusterConfig, name: string): Promise<NatsConnection> {
  return connect(connectionOptions(cfg, name));
}

/** Open `bucket`, creating it with `opts` when it does not exist yet. */
export async function bucket(
  nc: NatsConnection,
  name: string,
  opts: Partial<KvOptions>,
): Promise<KV> {
  const kvm = new Kvm(nc);
  return kvm.create(name, opts);
}

/**
 * Watch `key` in a bucket: `take` gets every entry it holds now, then every
 * change as it is made. Resolves once the entries it held are taken in,
 * with the function that stops the watch.
 */
export async function watchAll(
  kv: KV,
  key: string,
  take: (e: KvWatchEntry) => void,
): Promise<() => void> {
  const iter = await kv.watch({ key });
  let caughtUp: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    caughtUp = resolve;
  });
  void (async () => {
    for await (const e of iter) {
      take(e);
      if (e.delta === 0) caughtUp();
    }
  })();
  // An empty bucket sends nothing: no initial entries to wait for.
  if ((await kv.status()).values === 0) caughtUp();
  await ready;
  return () => iter.stop();
}
