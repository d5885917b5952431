/**
 * What the page shares with the rest: modules with no Node.js imports, so
 * the dashboard's bundle can load them (`@picluster/common/shared`). The
 * API's types come from the same place.
 */
export type * from "./api/alerts.js";
export type * from "./api/checks.js";
export type * from "./api/jobs.js";
export type * from "./api/nodes.js";
export type * from "./api/tasks.js";
export * from "./custom-series.js";
export * from "./error-codes.js";
export * from "./format.js";
export * from "./metrics.js";
export * from "./nodes.js";
export type * from "./protocol/messages.js";
