/**
 * A cluster's shared media directory (cluster_media_dir) is mounted by the
 * operator on every gateway before it starts; the gateway never creates it. On
 * a missing directory, or a mount point left empty (not mounted), a node would
 * make a signing secret of its own (URLs no other node accepts), write files
 * no other node sees, and its media sweep would take every row whose file it
 * cannot see for an orphan. So the start stops instead, naming the option.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";

/** The signing secret's file in a media home (data_dir or cluster_media_dir). */
export const secretFile = (mediaHome: string) => join(mediaHome, "media-secret");

/**
 * Why `dir` cannot be used as the shared media directory now, or undefined.
 * `secretExpected`: the directory must hold the signing secret already (this
 * node stored media there before, or loaded the secret at its start): without
 * it, it is an empty mount point, not a new cluster's directory.
 */
export function sharedMediaDirProblem(dir: string, secretExpected: boolean): string | undefined {
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return `cluster_media_dir: ${dir} is not a directory (not mounted?); every gateway of the cluster mounts it before it starts`;
  if (secretExpected && !existsSync(secretFile(dir))) return `cluster_media_dir: ${dir} holds no media-secret though this gateway stored media there (not mounted?)`;
  return undefined;
}
