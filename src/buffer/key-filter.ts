/**
 * A Bloom filter over the keys of one dedupe generation. It answers "certainly not
 * stored" for a new event id without an LMDB read (that read was a sixth of the
 * commit path's time, paid for every event although almost every id is new). A
 * "maybe" still goes to LMDB, so a false positive costs a read, never a lost event.
 *
 * About 10 bits per expected key and 7 probes: under 1 % false positives at the
 * generation's capacity. The filter is filled from the table after start-up, in
 * slices so the event loop keeps running; until it is complete it answers "maybe"
 * for everything. Keys added meanwhile are recorded, so none is missed.
 */
const PROBES = 7;
const BITS_PER_KEY = 10;
/** 8 MiB per filter: 1 % false positives up to ~6.7 M keys a generation; more keys only cost more reads. */
const MAX_BITS = 2 ** 26;

/** A key's two hashes, computed once for every filter and probe that asks about it. */
export class KeyHash {
  key: string | undefined;
  h1 = 0;
  h2 = 0;

  /** Hashes `key` unless it is the key hashed last (the same string). */
  of(key: string): this {
    if (key !== this.key) {
      hashes(key, this);
      this.key = key;
    }
    return this;
  }
}

export class KeyFilter {
  private readonly words: Uint32Array;
  private readonly mask: number;
  /** False until every key of the table has been added. */
  complete = false;

  constructor(capacity: number) {
    let bits = 1 << 16;
    while (bits < capacity * BITS_PER_KEY && bits < MAX_BITS) bits *= 2;
    this.words = new Uint32Array(bits / 32);
    this.mask = bits - 1;
  }

  add({ h1, h2 }: KeyHash): void {
    for (let i = 0; i < PROBES; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.mask;
      this.words[bit >>> 5]! |= 1 << (bit & 31);
    }
  }

  /** False only when the key was certainly never added. */
  mightHave({ h1, h2 }: KeyHash): boolean {
    if (!this.complete) return true;
    for (let i = 0; i < PROBES; i++) {
      const bit = (h1 + Math.imul(i, h2)) & this.mask;
      if ((this.words[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }

  /** The table was emptied: the filter is empty and complete. */
  clear(): void {
    this.words.fill(0);
    this.complete = true;
  }
}

/** Two independent 32-bit hashes of the key's UTF-16 code units (FNV-1a and a multiply-rotate mix). */
function hashes(key: string, out: { h1: number; h2: number }): void {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  // Final avalanche so that keys differing only at the end spread over all bits.
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  b ^= b >>> 13;
  b = Math.imul(b, 0xc2b2ae35);
  b ^= b >>> 16;
  out.h1 = a >>> 0;
  out.h2 = (b | 1) >>> 0;
}
