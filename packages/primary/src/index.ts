export * from "./credentials.js";
export * from "./dispatcher.js";
export * from "./events.js";
export * from "./liveness.js";
export * from "./primary.js";
export * from "./registry.js";
export * from "./session.js";
