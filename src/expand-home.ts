/**
 * `~` and `~/…` expanded to the user's home directory, the one way for config
 * paths and client-given workspace paths alike; any other path is returned as is.
 */
import { homedir } from "node:os";
import { join } from "node:path";

export const expandHome = (path: string) => (path === "~" ? homedir() : path.startsWith("~/") ? join(homedir(), path.slice(2)) : path);
