/**
 * The stored bytes of new events, written piece by piece into shared blocks.
 * Concatenating each event's JSON into one string cost twice: lmdb-js flattens the
 * string and copies it into a Buffer of its own, ~2.8 KB of garbage per event and
 * over a third of everything a file record allocates (bench/filedrop, sampled).
 * Here the envelope's head and the event's data (the larger part, already one
 * flat string) go straight into the block as UTF-8; the event's value is a slice.
 *
 * lmdb-js holds each slice until its write is done, so a block lives as long as
 * its last pending write; a full block is left to them and a fresh one started.
 */
const BLOCK_BYTES = 256 * 1024;
/** Buffer's own UTF-8 writer, without write()'s argument checks (msgpackr and lmdb-js use it the same way). */
type Block = Buffer & { utf8Write(s: string, offset: number, length: number): number };
/** UTF-8 needs at most 3 bytes per UTF-16 code unit (a surrogate pair: 4 for 2). */
const MAX_BYTES_PER_UNIT = 3;

export class ValueArena {
  private block = Buffer.allocUnsafe(BLOCK_BYTES) as Block;
  private at = 0;
  private start = 0;

  /** Starts a value of at most `maxChars` UTF-16 code units. */
  begin(maxChars: number): void {
    const room = maxChars * MAX_BYTES_PER_UNIT;
    if (this.at + room > this.block.length) {
      this.block = Buffer.allocUnsafe(Math.max(BLOCK_BYTES, room)) as Block;
      this.at = 0;
    }
    this.start = this.at;
  }

  write(s: string): void {
    this.at += this.block.utf8Write(s, this.at, this.block.length - this.at);
  }

  /** The value written since `begin`. */
  end(): Buffer {
    return this.block.subarray(this.start, this.at);
  }
}
