/**
 * The first file part of a multipart/form-data body, streamed: parsing is
 * @fastify/busboy's (a maintained parser that faces the network, with
 * RFC 5987 `filename*=`, quoting and boundary handling), fed from the request's
 * web stream. The file's bytes are passed on as they arrive; the caller
 * enforces the size limit while reading them. Header and part counts are
 * bounded so a body of many tiny parts cannot keep the parser busy.
 */
import { Readable } from "node:stream";
import type { ReadableStream as NodeWebStream } from "node:stream/web";
import Busboy from "@fastify/busboy";

export interface FilePart {
  mime: string;
  name: string;
  data: AsyncIterable<Uint8Array>;
  /** Stops reading the request (after a refusal): nothing more is parsed or buffered. */
  release(): void;
}

const LIMITS = { files: 1, parts: 64, fields: 63, fieldSize: 64 * 1024, headerPairs: 32 };

/** Undefined when the body has no file part; throws when the Content-Type names no usable boundary. */
export function firstFilePart(body: ReadableStream<Uint8Array>, contentType: string): Promise<FilePart | undefined> {
  const parser = Busboy({ headers: { "content-type": contentType }, limits: LIMITS });
  const source = Readable.fromWeb(body as NodeWebStream<Uint8Array>);
  const release = () => {
    source.unpipe(parser);
    source.destroy();
  };
  return new Promise((resolve) => {
    let found = false;
    parser.on("file", (_field, stream, filename, _encoding, mimeType) => {
      found = true;
      resolve({ mime: mimeType.trim().toLowerCase(), name: filename ?? "", data: stream, release });
    });
    // A body that ends inside the file part errors the file stream too (busboy forwards it), so the reader fails.
    parser.on("error", () => !found && resolve(undefined));
    parser.on("finish", () => !found && resolve(undefined));
    source.on("error", (e) => parser.destroy(e));
    source.pipe(parser);
  });
}
