// Child process for the crash test: streams a blob into a local CAS slowly,
// announcing on stdout once part of it is written, so the parent can kill it mid-blob.
import { LocalCas } from '../../src/cas/index.js';
import { digestOf } from '../../src/reapi/index.js';

const [dir, sizeText] = process.argv.slice(2);
if (dir === undefined || sizeText === undefined) throw new Error('usage: slow-writer DIR SIZE');
const size = Number(sizeText);
const data = Buffer.alloc(size, 7);
const cas = await LocalCas.open({ dir });
await cas.writeBlob(Buffer.from('a complete blob written before the crash'));
async function* chunks(): AsyncIterable<Uint8Array> {
  for (let i = 0; i < size; i += 64 * 1024) {
    if (i === 256 * 1024) process.stdout.write('half\n');
    if (i >= 256 * 1024) await new Promise((r) => setTimeout(r, 50));
    yield data.subarray(i, i + 64 * 1024);
  }
}
await cas.writeStream(digestOf(data), chunks());
process.stdout.write('done\n');
