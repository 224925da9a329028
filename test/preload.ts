/** Preloaded before every test file (bunfig.toml): after each test, undo what it started. */
import { afterAll, afterEach } from "bun:test";
import { runCleanups } from "./cleanup.ts";

afterEach(runCleanups);
afterAll(runCleanups);
