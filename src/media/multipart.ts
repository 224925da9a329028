/**
 * A streaming reader for the first file part of a multipart/form-data body.
 * Part headers are bounded; the file's bytes are passed on as they arrive,
 * holding back only enough to recognise the closing boundary.
 */
export interface FilePart {
  mime: string;
  name: string;
  data: AsyncIterable<Uint8Array>;
}

const MAX_HEADER_BYTES = 16 * 1024;
const HEADER_END = Buffer.from("\r\n\r\n");

/** Pulls bytes from a stream with the ability to push back what was not consumed. */
class ByteReader {
  #buffer = Buffer.alloc(0);
  readonly #source: AsyncIterator<Uint8Array>;
  done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#source = stream[Symbol.asyncIterator]();
  }

  get buffered(): Buffer {
    return this.#buffer;
  }

  async more(): Promise<boolean> {
    const next = await this.#source.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    this.#buffer = Buffer.concat([this.#buffer, next.value]);
    return true;
  }

  take(n: number): Buffer {
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }
}

function parseHeaders(raw: string): { name?: string; filename?: string; mime: string } {
  const disposition = /content-disposition:([^\r\n]*)/i.exec(raw)?.[1] ?? "";
  const mime = (/content-type:([^\r\n;]*)/i.exec(raw)?.[1] ?? "application/octet-stream").trim().toLowerCase();
  const filename = /filename="([^"]*)"/i.exec(disposition)?.[1];
  return { filename, mime, name: /\bname="([^"]*)"/i.exec(disposition)?.[1] };
}

/** Yields part bytes until the delimiter; leaves the reader just after it. */
async function* partBody(reader: ByteReader, delimiter: Buffer): AsyncGenerator<Uint8Array> {
  for (;;) {
    const at = reader.buffered.indexOf(delimiter);
    if (at !== -1) {
      if (at > 0) yield reader.take(at);
      reader.take(delimiter.length);
      return;
    }
    const safe = reader.buffered.length - (delimiter.length - 1);
    if (safe > 0) yield reader.take(safe);
    if (!(await reader.more())) throw new Error("multipart body ended inside a part");
  }
}

export async function firstFilePart(stream: ReadableStream<Uint8Array>, boundary: string): Promise<FilePart | undefined> {
  const reader = new ByteReader(stream);
  const opening = Buffer.from(`--${boundary}\r\n`);
  while (reader.buffered.length < opening.length) if (!(await reader.more())) return undefined;
  if (!reader.take(opening.length).equals(opening)) return undefined;
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  for (;;) {
    let end = reader.buffered.indexOf(HEADER_END);
    while (end === -1) {
      if (reader.buffered.length > MAX_HEADER_BYTES || !(await reader.more())) return undefined;
      end = reader.buffered.indexOf(HEADER_END);
    }
    const headers = parseHeaders(reader.take(end + HEADER_END.length).toString("utf8"));
    if (headers.filename !== undefined) return { mime: headers.mime, name: headers.filename, data: partBody(reader, delimiter) };
    for await (const _ of partBody(reader, delimiter)) {
      // a non-file field: skipped
    }
    while (reader.buffered.length < 2) if (!(await reader.more())) return undefined;
    if (reader.take(2).toString() === "--") return undefined;
  }
}
