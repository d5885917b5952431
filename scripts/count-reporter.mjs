// A test reporter for scripts/test.mjs: counts top-level outcomes and names the
// failures with the first lines of their errors, as one JSON line, so that the
// runner can total every file's run and repeat why each failure failed at the
// end of the run (where CI's tail shows it).
const ERROR_LINES = 12;

function firstLines(error) {
  if (error === undefined || error === null) return [];
  // A failing test's error is wrapped (code ERR_TEST_FAILURE) with the test's own
  // error as its cause; a failing subtest shows up as a failure of its parent.
  const cause = error.cause ?? error;
  const text =
    typeof cause === "object" && cause !== null && "stack" in cause && cause.stack
      ? String(cause.stack)
      : String(cause?.message ?? cause);
  // Node's own frames say nothing about the test; blank lines waste the tail.
  return text
    .split("\n")
    .filter((l) => l.trim() !== "" && !/\(node:|at node:|async_hooks/.test(l))
    .slice(0, ERROR_LINES);
}

export default async function* countReporter(source) {
  const counts = { tests: 0, pass: 0, fail: 0, skipped: 0, todo: 0, failed: [], errors: [] };
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const data = event.data;
    if (data.nesting !== 0) continue;
    counts.tests++;
    if (data.skip !== undefined && data.skip !== false) counts.skipped++;
    else if (data.todo !== undefined && data.todo !== false) counts.todo++;
    else if (event.type === "test:pass") counts.pass++;
    else {
      counts.fail++;
      counts.failed.push(data.name);
      counts.errors.push(firstLines(data.details?.error));
    }
  }
  yield `${JSON.stringify(counts)}\n`;
}
