/**
 * A dropped file's bytes: read in fixed blocks, fingerprinted (the SHA-256 that event
 * ids carry, and a digest per block), and read again with each block checked against
 * its digest, so that every record committed comes from exactly the bytes its id was
 * hashed from.
 */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';

/** Read and digest unit. Larger blocks read no faster here and held 40 MiB more in flight (bench/filedrop). */
const BLOCK_BYTES = 64 * 1024;

/** The file's SHA-256 (event ids) and a digest of each fixed block (re-reads prove they read the same bytes). */
export interface Fingerprint {
  sha256: string;
  /** Hex strings: a Buffer per digest would hold a backing store each (~12 KiB apiece measured). */
  blocks: string[];
}

/** The file's content differs from its fingerprint: the sender is still writing or rewrote it. */
export class FileChanged extends Error {}

/**
 * The file in fixed blocks, read into one buffer: a block is valid until the next
 * one is asked for (readers decode it at once; readAll copies). A fresh 64 KiB
 * buffer per block left glibc's heap ~20 MiB larger for the rest of a 1M-line file
 * (bench/filedrop).
 */
async function* blocksOf(path: string): AsyncIterable<Buffer> {
  const fh = await open(path, 'r');
  const block = Buffer.allocUnsafe(BLOCK_BYTES);
  try {
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(block, 0, BLOCK_BYTES, pos);
      if (bytesRead === 0) return;
      pos += bytesRead;
      yield bytesRead === BLOCK_BYTES ? block : block.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

export async function fingerprint(path: string): Promise<Fingerprint> {
  const whole = createHash('sha256');
  const blocks: string[] = [];
  for await (const block of blocksOf(path)) {
    whole.update(block);
    blocks.push(createHash('sha256').update(block).digest('hex'));
  }
  return { sha256: whole.digest('hex'), blocks };
}

/** The file's bytes, each block checked against the fingerprint before it is handed on. */
export async function* sameBytes(path: string, print: Fingerprint): AsyncIterable<Buffer> {
  let i = 0;
  for await (const block of blocksOf(path)) {
    const expected = print.blocks[i++];
    if (expected === undefined || createHash('sha256').update(block).digest('hex') !== expected) throw new FileChanged();
    yield block;
  }
  if (i !== print.blocks.length) throw new FileChanged();
}

/** Size and mtime are still those of `st0`. */
export async function unchanged(path: string, st0: { size: number; mtimeMs: number }): Promise<boolean> {
  const st = await stat(path);
  return st.size === st0.size && st.mtimeMs === st0.mtimeMs;
}
