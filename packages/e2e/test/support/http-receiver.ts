/**
 * A real HTTP server on 127.0.0.1 that records every request and answers as
 * told: a status and body, or never (a hanging receiver).
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** Set when the client went away before an answer (a cut attempt). */
  closedEarly: boolean;
}

export type Answer = { status: number; body?: string } | "hang";

export interface Receiver {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  url: string;
  requests: ReceivedRequest[];
}

/** Start a receiver; `answer` gets each request and its index (0 for the first). */
export async function startReceiver(
  t: { after(fn: () => Promise<void> | void): void },
  answer: (req: ReceivedRequest, index: number) => Answer = () => ({ status: 200 }),
): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const received: ReceivedRequest = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        closedEarly: false,
      };
      const index = requests.push(received) - 1;
      const a = answer(received, index);
      if (a === "hang") {
        res.on("close", () => {
          received.closedEarly = true;
        });
        return;
      }
      res.writeHead(a.status, { "content-type": "text/plain" });
      res.end(a.body ?? "");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests };
}
