export * from "./manual-clock.js";
export * from "./nats.js";
export * from "./next-event.js";
export * from "./podman.js";
export * from "./process.js";
export * from "./scratch.js";
export * from "./tmpfs.js";
