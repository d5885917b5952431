// A test reporter for scripts/test.mjs: counts top-level outcomes and names the
// failures, as one JSON line, so that the runner can total every file's run.
export default async function* countReporter(source) {
  const counts = { tests: 0, pass: 0, fail: 0, skipped: 0, todo: 0, failed: [] };
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
    }
  }
  yield `${JSON.stringify(counts)}\n`;
}
