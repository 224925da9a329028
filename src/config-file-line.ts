/**
 * The line a config file stops parsing at, so `cannot parse` can name it: Bun's
 * JSON and TOML parsers report no position. Runs only after a parse failed.
 *
 * TOML: the line after the longest prefix of whole lines that still parses (a
 * construct left open points at the line that opened it). JSON: a small
 * validator walks the text and stops at the first byte that cannot continue it.
 */

/** 1-based line of the error, or undefined when none can be pinned. */
export function parseErrorLine(text: string, toml: boolean): number | undefined {
  const offset = toml ? tomlErrorOffset(text) : jsonErrorOffset(text);
  if (offset === undefined) return undefined;
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function tomlErrorOffset(text: string): number | undefined {
  const lines = text.split("\n");
  let good = 0;
  for (let n = 1; n <= lines.length; n++) {
    try {
      Bun.TOML.parse(lines.slice(0, n).join("\n"));
      good = n;
    } catch {}
  }
  return good === lines.length ? undefined : lines.slice(0, good).join("\n").length + (good > 0 ? 1 : 0);
}

class JsonStop {
  constructor(readonly offset: number) {}
}

function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\r\n".includes(text[i]!)) i++;
  };
  const expect = (what: string) => {
    if (!text.startsWith(what, i)) throw new JsonStop(i);
    i += what.length;
  };
  const string = () => {
    expect('"');
    while (text[i] !== '"') {
      if (i >= text.length || text.charCodeAt(i) < 0x20) throw new JsonStop(i);
      i += text[i] === "\\" ? 2 : 1;
    }
    i++;
  };
  const number = () => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 64));
    if (!m || m[0] === "") throw new JsonStop(i);
    i += m[0].length;
  };
  const list = (close: string, item: () => void) => {
    i++;
    ws();
    if (text[i] === close) return void i++;
    for (;;) {
      item();
      ws();
      if (text[i] === close) return void i++;
      expect(",");
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") list("}", () => (ws(), string(), ws(), expect(":"), value()));
    else if (c === "[") list("]", value);
    else if (c === '"') string();
    else if (c === "t") expect("true");
    else if (c === "f") expect("false");
    else if (c === "n") expect("null");
    else number();
  };
  try {
    value();
    ws();
    return i < text.length ? i : undefined;
  } catch (e) {
    if (e instanceof JsonStop) return e.offset;
    throw e;
  }
}
