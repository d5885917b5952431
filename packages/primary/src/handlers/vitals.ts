import type { Message } from "@picluster/common";
import type { HandlerContext } from "../dispatcher.js";
import type { Session } from "../session.js";

export function handleVitals(ctx: HandlerContext, session: Session, msg: Message<"vitals">): void {
  if (session.nodeId !== undefined)
    ctx.registry.setVitals(session.nodeId, msg.payload, msg.seq, ctx.clock.now());
}
