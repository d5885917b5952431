import type { Message } from "@picluster/common";
import type { HandlerContext } from "../dispatcher.js";
import type { Session } from "../session.js";

/** Largest size of an agent's fields kept in our log line. */
const MAX_FIELDS_CHARS = 4_096;

/**
 * A line the agent wants on the primary's log, at its own level. Its fields
 * are nested, never spread, so an agent cannot overwrite ours (node, level…).
 */
export function handleLog(_ctx: HandlerContext, session: Session, msg: Message<"log">): void {
  const { level, msg: text, fields } = msg.payload;
  let agentFields: unknown = fields;
  if (fields !== undefined) {
    const json = JSON.stringify(fields);
    if (json.length > MAX_FIELDS_CHARS)
      agentFields = { truncated: json.slice(0, MAX_FIELDS_CHARS) };
  }
  session.log[level](text, {
    from: "agent",
    ...(agentFields === undefined ? {} : { agentFields }),
  });
}
