/**
 * Start-up marks for finding where start-up time goes (issue #16): with
 * AGENTGATE_STARTUP_TRACE=1 each mark prints `startup <ms since process start> <label>`
 * to stderr; without it a mark is a call to an empty function. Read the env
 * directly: the config is not loaded yet at the first marks.
 */
export const startupMark: (label: string) => void = process.env.AGENTGATE_STARTUP_TRACE
  ? (label) => process.stderr.write(`startup ${performance.now().toFixed(1)} ${label}\n`)
  : () => {};
