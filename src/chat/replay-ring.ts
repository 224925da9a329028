/**
 * The recent events of one chat, kept in memory so a reconnecting client
 * resumes without touching the disk. Bounded by count and bytes, but an event is
 * only evicted once the transcript holds it: everything at or below
 * `diskOnlyThrough` can be read from the file, everything above from here.
 */
export interface RingLimits {
  maxEvents: number;
  maxBytes: number;
}

export class ReplayRing {
  #seqs: number[] = [];
  #frames: string[] = [];
  #head = 0;
  #bytes = 0;

  /** Events with seq ≤ this are no longer (or never were, in this process) in the ring. */
  diskOnlyThrough: number;

  constructor(startSeq: number) {
    this.diskOnlyThrough = startSeq;
  }

  get bytes(): number {
    return this.#bytes;
  }

  push(seq: number, frame: string): void {
    this.#seqs.push(seq);
    this.#frames.push(frame);
    this.#bytes += frame.length;
  }

  /** Evicts the oldest events the transcript already holds until within limits (or until nothing is evictable). */
  evict(flushedThrough: number, limits: RingLimits): number {
    const before = this.#bytes;
    const seqs = this.#seqs;
    const frames = this.#frames;
    // One loop, no call per evicted event: this runs for every event once its transcript write lands.
    while (this.#head < seqs.length && (seqs.length - this.#head > limits.maxEvents || this.#bytes > limits.maxBytes)) {
      const seq = seqs[this.#head]!;
      if (seq > flushedThrough) break;
      this.#bytes -= frames[this.#head]!.length;
      frames[this.#head] = "";
      this.diskOnlyThrough = seq;
      this.#head++;
    }
    this.#compact();
    return before - this.#bytes;
  }

  /** Frames with seq in [fromSeq, throughSeq], oldest first. */
  *from(fromSeq: number, throughSeq = Number.POSITIVE_INFINITY): Generator<string> {
    for (let i = this.#head; i < this.#seqs.length && this.#seqs[i]! <= throughSeq; i++) if (this.#seqs[i]! >= fromSeq) yield this.#frames[i]!;
  }

  /** Reclaims the evicted prefix once it is at least half the arrays. */
  #compact(): void {
    if (this.#head === 0 || this.#head * 2 < this.#seqs.length) return;
    this.#seqs = this.#seqs.slice(this.#head);
    this.#frames = this.#frames.slice(this.#head);
    this.#head = 0;
  }
}
