export {
  type Channel,
  type ChannelDeps,
  createChannel,
  DISCORD_MAX_CHARS,
  SIGNATURE_HEADER,
  signBody,
  testMessage,
  webhookBody,
} from "./alerts/channels.js";
export * from "./alerts/delivery.js";
export * from "./alerts/engine.js";
export * from "./alerts/message.js";
export * from "./api-tokens.js";
export {
  type ImportProgress,
  type ImportSummary,
  importIntoCluster,
} from "./cluster/import.js";
export * from "./credentials.js";
export * from "./dispatcher.js";
export * from "./events.js";
export * from "./heartbeat.js";
export { type Need, ROUTE_ACCESS } from "./http/access.js";
export type { AlertsView, TestResult } from "./http/alerts.js";
export * from "./http/join.js";
export * from "./http/nodes.js";
export type { NodeAdmin } from "./http/nodes-admin.js";
export * from "./http/server.js";
export * from "./jobs/items.js";
export * from "./jobs/queue.js";
export * from "./jobs/service.js";
export * from "./liveness.js";
export * from "./primary.js";
export * from "./registry.js";
export * from "./removal.js";
export * from "./session.js";
export * from "./store/job-queue.js";
export * from "./store/jobs.js";
export * from "./store/metrics.js";
export * from "./store/store.js";
export * from "./tasks/service.js";
