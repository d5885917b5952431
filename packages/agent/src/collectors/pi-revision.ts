/**
 * Raspberry Pi revision codes (the `Revision` line of proc/cpuinfo, the
 * device tree's linux,revision), as documented at
 * https://www.raspberrypi.com/documentation/computers/raspberry-pi.html#raspberry-pi-revision-codes
 *
 * New-style codes, used since the Pi 2, set bit 23 and pack fields into the
 * bits NOQuuuWuFMMMCCCCPPPPTTTTTTTTRRRR: the board type in T (bits 4–11) and
 * the board revision 1.R in R (bits 0–3). Older boards have sequential codes
 * 0002–0015. Bits 24–31 are flags (warranty, OTP, overvoltage) in both
 * schemes and say nothing about the board.
 *
 * Names are spelt as the boards' own device trees spell them ("Model B Plus",
 * not "B+"), so a board named from its code reads the same as one named from
 * proc/device-tree/model.
 */

const NEW_STYLE_FLAG = 1 << 23;
const CODE_MASK = 0x00ff_ffff;

/** Board names by the new-style type field. 0x0f and 0x16 are "internal use only". */
const NEW_STYLE_TYPES: ReadonlyMap<number, string> = new Map([
  [0x00, "Model A"],
  [0x01, "Model B"],
  [0x02, "Model A Plus"],
  [0x03, "Model B Plus"],
  [0x04, "2 Model B"],
  [0x05, "Alpha"],
  [0x06, "Compute Module"],
  [0x08, "3 Model B"],
  [0x09, "Zero"],
  [0x0a, "Compute Module 3"],
  [0x0c, "Zero W"],
  [0x0d, "3 Model B Plus"],
  [0x0e, "3 Model A Plus"],
  [0x10, "Compute Module 3 Plus"],
  [0x11, "4 Model B"],
  [0x12, "Zero 2 W"],
  [0x13, "400"],
  [0x14, "Compute Module 4"],
  [0x15, "Compute Module 4S"],
  [0x17, "5 Model B"],
  [0x18, "Compute Module 5"],
  [0x19, "500"],
  [0x1a, "Compute Module 5 Lite"],
]);

/** Old-style codes: board name and board revision. */
const OLD_STYLE_CODES: ReadonlyMap<number, readonly [string, string]> = new Map([
  [0x02, ["Model B", "1.0"]],
  [0x03, ["Model B", "1.0"]],
  [0x04, ["Model B", "2.0"]],
  [0x05, ["Model B", "2.0"]],
  [0x06, ["Model B", "2.0"]],
  [0x07, ["Model A", "2.0"]],
  [0x08, ["Model A", "2.0"]],
  [0x09, ["Model A", "2.0"]],
  [0x0d, ["Model B", "2.0"]],
  [0x0e, ["Model B", "2.0"]],
  [0x0f, ["Model B", "2.0"]],
  [0x10, ["Model B Plus", "1.2"]],
  [0x11, ["Compute Module", "1.0"]],
  [0x12, ["Model A Plus", "1.1"]],
  [0x13, ["Model B Plus", "1.2"]],
  [0x14, ["Compute Module", "1.0"]],
  [0x15, ["Model A Plus", "1.1"]],
]);

/**
 * "c03111" → "Raspberry Pi 4 Model B Rev 1.1"; undefined for text that is not
 * a code of up to 32 bits (an optional 0x prefix allowed) or names no known
 * board, such as the "0000" other ARM boards print.
 */
export function piModelFromRevision(code: string): string | undefined {
  const hex = code.trim().replace(/^0x/i, "");
  if (!/^[0-9a-f]{1,8}$/i.test(hex)) return undefined;
  const bits = Number.parseInt(hex, 16) & CODE_MASK;
  if ((bits & NEW_STYLE_FLAG) !== 0) {
    const name = NEW_STYLE_TYPES.get((bits >>> 4) & 0xff);
    return name === undefined ? undefined : `Raspberry Pi ${name} Rev 1.${bits & 0xf}`;
  }
  const old = OLD_STYLE_CODES.get(bits);
  return old === undefined ? undefined : `Raspberry Pi ${old[0]} Rev ${old[1]}`;
}
