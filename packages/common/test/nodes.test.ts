import assert from "node:assert/strict";
import { test } from "node:test";
import { type NODE_STATES, parseSelector, SelectorError, selectNodes } from "../src/nodes.js";

const node = (name: string, state: (typeof NODE_STATES)[number], labels = {}) => ({
  id: `id-${name}`,
  name,
  state,
  labels,
});

test("selector - all, a state, label=value, names and ids: any term picks; unknown names are reported", () => {
  const nodes = [
    node("pi-10", "alive", { rack: "a" }),
    node("pi-2", "down", { rack: "b" }),
    node("pi-3", "alive"),
  ];
  const pick = (s: string) => selectNodes(nodes, parseSelector(s));
  assert.deepEqual(
    pick("all").nodes.map((n) => n.name),
    ["pi-2", "pi-3", "pi-10"],
  );
  assert.deepEqual(
    pick("down, rack=a").nodes.map((n) => n.name),
    ["pi-2", "pi-10"],
  );
  assert.deepEqual(
    pick("id-pi-3,ghost").nodes.map((n) => n.name),
    ["pi-3"],
  );
  assert.deepEqual(pick("id-pi-3,ghost").unknownNames, ["ghost"]);
});

test("selector - an empty selector and a label without a key are refused with E_BAD_SELECTOR", () => {
  for (const bad of ["", " , ", "=x"]) {
    assert.throws(
      () => parseSelector(bad),
      (err: unknown) => err instanceof SelectorError && err.code === "E_BAD_SELECTOR",
      bad,
    );
  }
});
