/** `agentgate schema --out DIR`: the protocol documents, generated from the TypeBox schemas (docs/protocol.md explains them). */
import { protocolDocuments } from "../protocol/documents.ts";

export async function writeSchemas(outDir: string): Promise<void> {
  const docs = protocolDocuments();
  for (const [path, text] of docs) await Bun.write(`${outDir}/${path}`, text);
  process.stdout.write(`wrote ${docs.size} protocol documents to ${outDir}\n`);
}
