/**
 * What nodes send, made safe for a terminal. A node chooses its name, its
 * labels, its process names, its log lines and its tasks' output, and a
 * terminal obeys what it is sent: `ESC ] 0 ; … BEL` retitles the window,
 * `ESC [` sequences recolour, move the cursor or clear the screen, and a
 * right-to-left override makes text read differently from what it is.
 * Every string that came from a node goes through one of these before a
 * command prints it; our own colours are added after.
 */

/** C0 and C1 controls and DEL, format characters (zero-width, bidi), line and paragraph separators. */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;
/** The same, in JSON text: C0 controls are already escaped there by JSON.stringify. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\p{Cf}\u2028\u2029]/gu;

/** `\x1b`, `\u200b`, `\u{e0041}`: the character as text a person can read. */
function escaped(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  if (cp <= 0xff) return `\\x${cp.toString(16).padStart(2, "0")}`;
  if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, "0")}`;
  return `\\u{${cp.toString(16)}}`;
}

/** One line (a name, a label, a process name, an error): every control character shown escaped, newlines and tabs too. */
export function safeLine(text: string): string {
  return text.replace(UNSAFE, escaped);
}

/**
 * Text of many lines (task output, log lines): newlines and tabs are kept
 * (and a carriage return that ends a line, `\r\n`); every other control
 * character is shown escaped.
 */
export function safeText(text: string): string {
  return text.replace(UNSAFE, (ch: string, at: number) =>
    ch === "\n" || ch === "\t" || (ch === "\r" && text[at + 1] === "\n") ? ch : escaped(ch),
  );
}

/**
 * `value` as one line of JSON that is safe to print: JSON.stringify escapes
 * C0 controls; this escapes DEL, C1 controls, format characters and
 * separators too, as `\uXXXX`, so the text parses back to the same value.
 */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(UNSAFE_IN_JSON, (ch) => {
    let out = "";
    // An astral character is two UTF-16 units in JSON's \u escapes.
    for (let i = 0; i < ch.length; i++)
      out += `\\u${ch.charCodeAt(i).toString(16).padStart(4, "0")}`;
    return out;
  });
}

/** A node's name as people read it: a tutorial (legacy) node's says so. */
export function nodeName(name: string, legacy = false): string {
  return legacy ? `${safeLine(name)} (tutorial)` : safeLine(name);
}
