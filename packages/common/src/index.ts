export type * from "./api/alerts.js";
export type * from "./api/jobs.js";
export type * from "./api/tasks.js";
export * from "./auth.js";
export * from "./clock.js";
export * from "./config/alerts.js";
export * from "./config/channels.js";
export * from "./config/ini.js";
export * from "./config/load.js";
export * from "./config/render.js";
export * from "./config/schema.js";
export * from "./config/tasks.js";
export * from "./config/types.js";
export * from "./errors.js";
export * from "./log/liveness.js";
export * from "./log/logger.js";
export * from "./log/rotating-file.js";
export * from "./log/setup.js";
export * from "./paths.js";
export * from "./protocol/codec.js";
export * from "./protocol/envelope.js";
export * from "./protocol/json-check.js";
// Types only: the schemas themselves (TypeBox) are in "@picluster/common/schema",
// which the agent never loads.
export type * from "./protocol/messages.js";
export * from "./protocol/version.js";
export * from "./runtime.js";
export * from "./time.js";
