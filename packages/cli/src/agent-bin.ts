// Entry of the agent bundle (CommonJS, so no top-level await).
import { agentMain } from "./agent-main.js";
import { exitQuietlyOnClosedPipe } from "./io.js";

exitQuietlyOnClosedPipe();
void agentMain(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
