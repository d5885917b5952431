// A worker thread that logs `lines` records through the port it was given.
import { type MessagePort, workerData } from "node:worker_threads";
import { portLogger } from "../../src/log/logger.js";

const { port, worker, lines } = workerData as { port: MessagePort; worker: number; lines: number };
const log = portLogger(port, { level: "info", bindings: { worker } });
for (let n = 0; n < lines; n++) {
  // Varying length and multi-byte characters: a torn line would not parse.
  log.info("record", { n, pad: "é✓".repeat(n % 40), quote: 'a "quoted" \n line' });
}
log.info("last", { n: lines });
