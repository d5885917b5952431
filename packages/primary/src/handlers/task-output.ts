import type { Message } from "@picluster/common";
import type { HandlerContext } from "../dispatcher.js";
import type { Session } from "../session.js";

/** Output of a task this session's node runs: to the request it belongs to. */
export function handleTaskOutput(
  _ctx: HandlerContext,
  session: Session,
  msg: Message<"task.output">,
): void {
  session.routeOutput(msg.payload);
}
