/**
 * `workspace_scope` on new_chat / set_workspace_scope / message: validated with
 * nanobot's reasons and stored as chat metadata, and the policy of when a chat's
 * scope may change (not while a turn runs with another one). The gateway itself
 * does not sandbox anything; it records the scope for the agent and echoes it to clients.
 */
import { statSync } from "node:fs";
import { basename, isAbsolute, resolve } from "node:path";
import { expandHome } from "../expand-home.ts";
import { SCOPE_REJECT, type ScopeRejectReason } from "../protocol/errors.ts";

export interface WorkspaceScope {
  project_path: string;
  access_mode: "restricted" | "full";
}

export type ScopeResult = { ok: true; scope: WorkspaceScope } | { ok: false; reason: ScopeRejectReason };

/** A Map: the key is client input, so `constructor` or `__proto__` must not resolve. */
const ACCESS_MODES = new Map<string, WorkspaceScope["access_mode"]>([
  ["restricted", "restricted"],
  ["restrict", "restricted"],
  ["full", "full"],
  ["full-access", "full"],
]);

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function resolveProjectPath(raw: unknown): { ok: true; path: string } | { ok: false; reason: ScopeRejectReason } {
  if (typeof raw !== "string") return { ok: false, reason: SCOPE_REJECT.pathNotString };
  if (raw.includes("\0") || /[\r\n]/.test(raw)) return { ok: false, reason: SCOPE_REJECT.pathInvalidCharacters };
  const expanded = expandHome(raw);
  if (!isAbsolute(expanded)) return { ok: false, reason: SCOPE_REJECT.pathNotAbsolute };
  const path = resolve(expanded);
  return isDirectory(path) ? { ok: true, path } : { ok: false, reason: SCOPE_REJECT.pathNotDirectory };
}

function resolveAccessMode(raw: unknown): { ok: true; mode: WorkspaceScope["access_mode"] } | { ok: false; reason: ScopeRejectReason } {
  if (raw === undefined) return { ok: true, mode: "restricted" };
  if (typeof raw !== "string") return { ok: false, reason: SCOPE_REJECT.modeNotString };
  const mode = ACCESS_MODES.get(raw.trim().toLowerCase().replaceAll("_", "-"));
  return mode ? { ok: true, mode } : { ok: false, reason: SCOPE_REJECT.modeUnknown };
}

export function resolveWorkspaceScope(raw: unknown, local: boolean): ScopeResult {
  if (!local) return { ok: false, reason: SCOPE_REJECT.notLocal };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { ok: false, reason: SCOPE_REJECT.notObject };
  const fields = raw as Record<string, unknown>;
  const path = resolveProjectPath(fields.project_path);
  if (!path.ok) return path;
  const mode = resolveAccessMode(fields.access_mode);
  if (!mode.ok) return mode;
  return { ok: true, scope: { project_path: path.path, access_mode: mode.mode } };
}

/** The scope as clients are shown it. */
export function scopePayload(scope: WorkspaceScope): Record<string, unknown> {
  return { ...scope, project_name: basename(scope.project_path), restrict_to_workspace: scope.access_mode === "restricted" };
}

/** Where a chat's scope is kept (chat metadata) and whether a turn runs in it. */
export interface ScopeStore {
  metadata(chatId: string): Record<string, unknown> | undefined;
  mergeMetadata(chatId: string, patch: Record<string, unknown>): void;
  running(chatId: string): boolean;
}

const sameScope = (a: WorkspaceScope, b: WorkspaceScope | undefined) => b !== undefined && a.project_path === b.project_path && a.access_mode === b.access_mode;

/** When a chat's scope may be set, and its stored value. `local`: the asking peer has a local user's trust. */
export class WorkspaceScopes {
  constructor(private readonly store: ScopeStore) {}

  /** The chat's stored scope, if any. */
  of(chatId: string): WorkspaceScope | undefined {
    return this.store.metadata(chatId)?.workspace_scope as WorkspaceScope | undefined;
  }

  /** new_chat's scope, already validated: stored with the new chat. */
  adopt(chatId: string, scope: WorkspaceScope): void {
    this.store.mergeMetadata(chatId, { workspace_scope: scope });
  }

  /** set_workspace_scope: refused while a turn runs, then validated and stored. */
  set(chatId: string, raw: unknown, local: boolean): ScopeResult {
    if (this.store.running(chatId)) return { ok: false, reason: SCOPE_REJECT.chatRunning };
    return this.#store(chatId, resolveWorkspaceScope(raw, local));
  }

  /** A message's own scope: validated, refused while a turn runs with another scope, stored. */
  applyToMessage(chatId: string, raw: unknown, local: boolean): ScopeResult {
    const result = resolveWorkspaceScope(raw, local);
    if (result.ok && this.store.running(chatId) && !sameScope(result.scope, this.of(chatId))) return { ok: false, reason: SCOPE_REJECT.chatRunning };
    return this.#store(chatId, result);
  }

  #store(chatId: string, result: ScopeResult): ScopeResult {
    if (result.ok) this.store.mergeMetadata(chatId, { workspace_scope: result.scope });
    return result;
  }
}
