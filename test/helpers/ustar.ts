// Writes tar archives member by member, including members no honest tool
// produces (`..`, absolute names, files under a symlink, device nodes), so
// that tests can show what the tar source refuses or leaves out.

export type UstarEntry =
  | { type: 'file'; name: string; content: string; mode?: number }
  | { type: 'dir'; name: string }
  | { type: 'symlink'; name: string; target: string }
  | { type: 'hardlink'; name: string; target: string }
  | { type: 'fifo'; name: string }
  | { type: 'chardev'; name: string; major: number; minor: number };

const TYPEFLAG = { file: '0', hardlink: '1', symlink: '2', chardev: '3', dir: '5', fifo: '6' };

function put(h: Buffer, offset: number, length: number, text: string): void {
  const b = Buffer.from(text, 'utf8');
  if (b.length > length) throw new Error(`ustar: "${text}" does not fit in ${length} bytes`);
  b.copy(h, offset);
}

function octal(n: number, length: number): string {
  return n.toString(8).padStart(length - 1, '0');
}

/** An uncompressed ustar archive of the entries, in order. */
export function ustar(entries: readonly UstarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const h = Buffer.alloc(512);
    const data = e.type === 'file' ? Buffer.from(e.content, 'utf8') : Buffer.alloc(0);
    const mode = e.type === 'file' ? (e.mode ?? 0o644) : e.type === 'dir' ? 0o755 : 0o777;
    put(h, 0, 100, e.name);
    put(h, 100, 8, octal(mode, 8));
    put(h, 108, 8, octal(0, 8));
    put(h, 116, 8, octal(0, 8));
    put(h, 124, 12, octal(data.length, 12));
    put(h, 136, 12, octal(1_600_000_000, 12));
    put(h, 148, 8, '        ');
    put(h, 156, 1, TYPEFLAG[e.type]);
    if (e.type === 'symlink' || e.type === 'hardlink') put(h, 157, 100, e.target);
    put(h, 257, 6, 'ustar');
    put(h, 263, 2, '00');
    if (e.type === 'chardev') {
      put(h, 329, 8, octal(e.major, 8));
      put(h, 337, 8, octal(e.minor, 8));
    }
    let sum = 0;
    for (const byte of h) sum += byte;
    put(h, 148, 8, `${octal(sum, 7)}\0 `);
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
