export { type BuildPrimaryOptions, type BuiltPrimary, buildPrimary } from "./build-primary.js";
