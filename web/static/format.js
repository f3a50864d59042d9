// format.js: pure helpers that turn values and times into text for the
// console: UTF-8 detection, hex dumps, sizes, durations and expiries.

const HEX_DUMP_LIMIT = 64 * 1024;

/**
 * textOf returns the value as a string when it is UTF-8 text (no control
 * characters other than tab, newline and carriage return), else null.
 */
export function textOf(bytes) {
  let s;
  try {
    s = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return null;
  }
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s)) return null;
  return s;
}

/**
 * hexDump formats bytes as lines of 16: offset, hex pairs and the
 * printable ASCII characters. It stops after 64 KiB.
 */
export function hexDump(bytes) {
  const n = Math.min(bytes.length, HEX_DUMP_LIMIT);
  const lines = [];
  for (let off = 0; off < n; off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, n));
    let hex = '';
    let ascii = '';
    for (let i = 0; i < 16; i++) {
      if (i === 8) hex += ' ';
      if (i < row.length) {
        hex += `${row[i].toString(16).padStart(2, '0')} `;
        ascii += row[i] >= 0x20 && row[i] < 0x7f ? String.fromCharCode(row[i]) : '.';
      } else {
        hex += '   ';
      }
    }
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex} |${ascii}|`);
  }
  if (bytes.length > n) lines.push(`… ${formatBytes(bytes.length - n)} more not shown`);
  return lines.join('\n');
}

/** formatBytes is a size such as "12 B" or "3.4 KiB". */
export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** goDuration formats seconds as a Go duration such as "1h2m3s". */
export function goDuration(totalSeconds) {
  let s = Math.max(1, Math.ceil(totalSeconds));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}` || '0s';
}

/** humanDuration is a short, rounded duration such as "5m" or "2h 10m". */
export function humanDuration(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? ` ${s % 60}s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60 ? ` ${m % 60}m` : ''}`;
  return `${Math.floor(h / 24)}d${h % 24 ? ` ${h % 24}h` : ''}`;
}

/** expiryText describes an RFC 3339 expiry relative to now ("in 59m 58s"). */
export function expiryText(expiresAt, now = Date.now()) {
  if (!expiresAt) return 'never';
  const t = Date.parse(expiresAt);
  if (Number.isNaN(t)) return expiresAt;
  const d = t - now;
  return d > 0 ? `in ${humanDuration(d)}` : 'expired';
}

/** clockTime is the local time of day, e.g. "14:03:07". */
export function clockTime(date = new Date()) {
  return date.toLocaleTimeString([], { hour12: false });
}

/** preview is the start of a base64 value as text, for the event log. */
export function preview(base64, max = 60) {
  if (!base64) return '';
  let bytes;
  try {
    bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  } catch {
    return '';
  }
  const text = textOf(bytes);
  if (text === null) return `${formatBytes(bytes.length)} binary`;
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}
