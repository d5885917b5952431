import type { Message } from "@picluster/common";
import type { HandlerContext } from "../dispatcher.js";
import type { Session } from "../session.js";

export function handleDetails(
  ctx: HandlerContext,
  session: Session,
  msg: Message<"details">,
): void {
  if (session.nodeId !== undefined)
    ctx.registry.setDetails(session.nodeId, msg.payload, ctx.clock.now());
}
