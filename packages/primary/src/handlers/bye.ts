import type { Message } from "@picluster/common";
import type { HandlerContext } from "../dispatcher.js";
import type { Session } from "../session.js";

/** A clean goodbye: the node is `left`, not `down`. */
export function handleBye(ctx: HandlerContext, session: Session, msg: Message<"bye">): void {
  if (session.nodeId === undefined) return;
  session.saidBye = true;
  ctx.liveness.unwatch(session.nodeId);
  ctx.registry.setState(session.nodeId, "left", msg.payload.reason || "said bye", ctx.clock.now());
  session.close("said bye");
}
