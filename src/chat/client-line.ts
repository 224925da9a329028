/**
 * A stored transcript line as clients may see it: without its `private` part
 * (the agent's original text and server paths), and with every media URL signed
 * afresh, so replay and history never hand out expired links or raw paths.
 * Lines with neither are returned as they are (the common case costs two scans).
 */
import { MEDIA_ROUTE, type MediaSigner } from "../media/signing.ts";

export function clientLine(signer: MediaSigner): (line: string) => string {
  return (line) => {
    const withoutPrivate = line.includes('"private":') ? JSON.stringify({ ...JSON.parse(line), private: undefined }) : line;
    return withoutPrivate.includes(MEDIA_ROUTE) ? signer.refresh(withoutPrivate) : withoutPrivate;
  };
}
