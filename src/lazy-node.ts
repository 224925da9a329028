/**
 * Node built-ins for the code that runs before the listeners bind, loaded on first use: each costs
 * milliseconds to load in the compiled binary, and the usual start-up needs none of them (issue #16,
 * bench/startup.ts). `require` caches the module, so a call after the first is a lookup.
 */
export const nodeFs = () => require("node:fs") as typeof import("node:fs");
export const nodePath = () => require("node:path") as typeof import("node:path");
export const nodeOs = () => require("node:os") as typeof import("node:os");
export const nodeNet = () => require("node:net") as typeof import("node:net");
