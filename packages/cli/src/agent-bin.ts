// Entry of the agent bundle.
import { agentMain } from "./agent-main.js";

process.exitCode = await agentMain(process.argv.slice(2));
