export * from "./agent.js";
export * from "./collectors/index.js";
export * from "./dial.js";
export * from "./identity.js";
export * from "./link.js";
export * from "./outbox.js";
