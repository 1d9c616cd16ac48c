'use strict';
// Redis Cluster's hash slot of a key: CRC16-XMODEM of its UTF-8 bytes (of the part between the
// first '{' and the next '}' when that part is not empty, the "hash tag"), modulo 16,384. The
// tier keeps one invalidation counter per slot, on a single Redis as on a cluster, so that a
// cluster node's feed going down distrusts exactly the keys of that node's slots.

const SLOTS = 16384;

const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let b = 0; b < 8; b++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  TABLE[i] = c;
}

function crcBytes(bytes, from, to) {
  let crc = 0;
  for (let i = from; i < to; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]) & 0xff];
  return crc;
}

// The hash-tag part of a string, or the string: [from, to) in `s`.
function tagRange(s) {
  const open = s.indexOf('{');
  if (open !== -1) {
    const close = s.indexOf('}', open + 1);
    if (close > open + 1) return [open + 1, close];
  }
  return [0, s.length];
}

/** The hash slot of the Redis key `s` (a string). */
function slotOf(s) {
  const [from, to] = tagRange(s);
  let crc = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      // Not ASCII: hash the UTF-8 bytes of the tag part.
      const bytes = Buffer.from(s.slice(from, to), 'utf8');
      return crcBytes(bytes, 0, bytes.length) & (SLOTS - 1);
    }
    crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ c) & 0xff];
  }
  return crc & (SLOTS - 1);
}

module.exports = { slotOf, SLOTS };
