/** The protocol version this build speaks (the `v` of every envelope). */
export const PROTOCOL_VERSION = 1;
