/** A NATS cluster for a test of the scale-out mode, ended when the test ends. */
import { type NatsCluster, natsServerInstalled, startNatsServers } from "../nats-servers.js";

export interface NatsTestContext {
  after(fn: () => void | Promise<void>): void;
}

/** Why the scale-out tests cannot run here, or undefined when nats-server is installed. */
export const NO_NATS: string | undefined = natsServerInstalled()
  ? undefined
  : "nats-server is not installed (Debian package nats-server; .ci/run installs it)";

export async function startNatsCluster(t: NatsTestContext, n = 3): Promise<NatsCluster> {
  const cluster = await startNatsServers(n);
  t.after(() => cluster.stop());
  return cluster;
}
