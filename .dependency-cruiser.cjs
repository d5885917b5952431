/**
 * The layering of picluster's packages, checked by `npm run lint`
 * (docs/architecture.md, "Layers"). Sources only: tests may import anything.
 * Workspace imports (@picluster/x) resolve to packages/x, so each rule
 * names the package folders a layer may not reach.
 */
const ours = (names) => `^packages/(${names.join("|")})/`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-cycles",
      comment:
        "No import cycles anywhere, type-only imports included: a cycle hides an order of start-up.",
      severity: "error",
      from: { path: "^packages/[^/]+/src/" },
      to: { circular: true },
    },
    {
      name: "common-is-the-bottom",
      comment: "common is imported by everyone and imports none of our other packages.",
      severity: "error",
      from: { path: "^packages/common/src/" },
      to: { path: ours(["agent", "primary", "dashboard", "cli", "e2e"]) },
    },
    {
      name: "agent-alone",
      comment: "The agent runs on a Pi Zero: it never loads the primary, the CLI or the dashboard.",
      severity: "error",
      from: { path: "^packages/agent/src/" },
      to: { path: ours(["primary", "dashboard", "cli", "e2e"]) },
    },
    {
      name: "primary-not-agent",
      comment:
        "The primary talks to agents over the wire only, and never loads the CLI or dashboard code.",
      severity: "error",
      from: { path: "^packages/primary/src/" },
      to: { path: ours(["agent", "dashboard", "cli", "e2e"]) },
    },
    {
      name: "dashboard-only-common",
      comment: "The page is built from its own code and common's API types only.",
      severity: "error",
      from: { path: "^packages/dashboard/src/" },
      to: { path: ours(["agent", "primary", "cli", "e2e"]) },
    },
    {
      name: "no-test-code-in-src",
      comment: "Sources never import tests or their support.",
      severity: "error",
      from: { path: "^packages/[^/]+/src/" },
      to: { path: "^packages/[^/]+/test/" },
    },
  ],
  options: {
    // Our packages resolve to their built dist/ (package.json exports): the
    // edge into it counts, what is inside it is not cruised again.
    doNotFollow: { path: "node_modules|/dist/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.base.json" },
    combinedDependencies: true,
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "types", "default"],
      extensions: [".ts", ".tsx", ".js", ".mjs"],
    },
  },
};
