import type { Server } from "node:net";

/** Start `server` on host:port (empty host: every interface); resolves with the bound address, rejects with the listen error. */
export async function listen(
  server: Server,
  host: string,
  port: number,
): Promise<{ host: string; port: number }> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: host === "" ? undefined : host, port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === "string")
    throw new Error("listener has no TCP address");
  return { host: address.address, port: address.port };
}
