/**
 * `~` and `~/…` expanded to the user's home directory, the one way for config
 * paths and client-given workspace paths alike; any other path is returned as is.
 * node:os and node:path are required only for such a path: loading them is
 * start-up time (issue #16) that an absolute path need not pay.
 */
import { nodeOs, nodePath } from "./lazy-node.ts";

export const expandHome = (path: string) => (path === "~" ? nodeOs().homedir() : path.startsWith("~/") ? nodePath().join(nodeOs().homedir(), path.slice(2)) : path);
