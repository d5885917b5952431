import type { HandlerTable } from "../dispatcher.js";
import { handleBye } from "./bye.js";
import { handleDetails } from "./details.js";
import { handleHeartbeat } from "./heartbeat.js";
import { handleHello } from "./hello.js";
import { handleLog } from "./log.js";
import { handleTaskOutput } from "./task-output.js";
import { handleVitals } from "./vitals.js";

/** One handler per message type an agent sends; adding a type means adding one file here. */
export const HANDLERS: HandlerTable = {
  hello: handleHello,
  details: handleDetails,
  heartbeat: handleHeartbeat,
  vitals: handleVitals,
  log: handleLog,
  bye: handleBye,
  "task.output": handleTaskOutput,
};
