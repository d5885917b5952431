export * from "./manual-clock.js";
export * from "./next-event.js";
