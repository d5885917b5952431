/**
 * The message schemas as TypeBox values and the compiled envelope parser:
 * for the primary and tools. Kept out of the main entry point so that the
 * agent does not pay ~20 MiB of RSS for TypeBox (see protocol/json-check.ts).
 */

export * from "./api/alerts.js";
export * from "./api/checks.js";
export * from "./api/jobs.js";
export * from "./api/nodes.js";
export * from "./api/tasks.js";
export * from "./protocol/compiled.js";
export * from "./protocol/messages.js";
export * from "./protocol/wire-render.js";
