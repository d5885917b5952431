/**
 * Messages the primary must store, kept until it acknowledges them. Bounded:
 * when full, the oldest is dropped and counted (the count travels in every
 * heartbeat). Seqs increase by one per message.
 */
import type { MessageMap } from "@picluster/common";

export interface OutboxEntry {
  seq: number;
  ts: number;
  type: "vitals";
  payload: MessageMap["vitals"];
}

export class Outbox {
  /**
   * Live entries from `head` on. A slot before it is cleared as the head
   * passes it, so a sample the primary stored (or one dropped) is released at
   * once: with 20 containers and custom series a sample is ~8 KiB of heap, and
   * keeping the acknowledged ones until the array is compacted grew the agent
   * by several MiB over hours (found with two heap snapshots, issue 18).
   */
  private entries: Array<OutboxEntry | undefined> = [];
  /** Index of the first live entry: dropping from the front is O(1). */
  private head = 0;
  private nextSeq = 1;
  private rebased = false;
  dropped = 0;
  /** Every seq up to this one is stored on the primary (acknowledged). */
  ackedUpTo = 0;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.length - this.head;
  }

  push(
    type: "vitals",
    payload: MessageMap["vitals"],
    ts: number,
  ): { entry: OutboxEntry; droppedOldest: boolean } {
    const entry: OutboxEntry = { seq: this.nextSeq++, ts, type, payload };
    this.entries.push(entry);
    let droppedOldest = false;
    if (this.size > this.capacity) {
      this.advance();
      this.dropped += 1;
      droppedOldest = true;
    }
    this.compact();
    return { entry, droppedOldest };
  }

  /** The primary stored everything up to `seq`. */
  ack(seq: number): void {
    if (seq > this.ackedUpTo) this.ackedUpTo = seq;
    while (
      this.head < this.entries.length &&
      (this.entries[this.head]?.seq ?? Number.POSITIVE_INFINITY) <= seq
    )
      this.advance();
    this.compact();
  }

  /** The front entry is gone (stored or dropped): let it go. */
  private advance(): void {
    this.entries[this.head] = undefined;
    this.head += 1;
  }

  /**
   * The primary's `welcome` says which seq it stored last. The first welcome
   * a fresh agent gets also sets where numbering continues, so that samples
   * taken after a restart are never mistaken for ones already stored.
   */
  welcome(lastSeq: number): void {
    if (!this.rebased) {
      this.rebased = true;
      if (lastSeq >= (this.entries[this.head]?.seq ?? this.nextSeq)) {
        let seq = lastSeq + 1;
        for (let i = this.head; i < this.entries.length; i++)
          (this.entries[i] as OutboxEntry).seq = seq++;
        this.nextSeq = seq;
      }
      return;
    }
    this.ack(lastSeq);
  }

  /** The oldest unacknowledged entry, if any. */
  oldest(): OutboxEntry | undefined {
    return this.entries[this.head];
  }

  /** Every unacknowledged entry, oldest first. */
  pending(): readonly OutboxEntry[] {
    return this.entries.slice(this.head) as OutboxEntry[];
  }

  private compact(): void {
    // Reclaim the dropped front now and then, not on every ack.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
