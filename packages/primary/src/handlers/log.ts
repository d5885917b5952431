import type { Message } from "@picluster/common";
import type { HandlerContext } from "../dispatcher.js";
import type { Session } from "../session.js";

/** A line the agent wants on the primary's log, at its own level. */
export function handleLog(_ctx: HandlerContext, session: Session, msg: Message<"log">): void {
  const { level, msg: text, fields } = msg.payload;
  session.log[level](text, { ...fields, from: "agent" });
}
