// iSCSI names (RFC 7143 §4.2.7): the three formats of §4.2.7.2 and the character and length
// rules of §4.2.7.1 (at most 223 bytes of UTF-8; ASCII punctuation limited to '-', '.', ':').
//
// Names are compared after the stringprep profile of RFC 3722, which maps upper case to lower
// case, so "IQN.2026-11.Com.Example:X" and "iqn.2026-11.com.example:x" are the same name. We
// normalize to lower case on input and store the normalized form.

export const MAX_ISCSI_NAME_BYTES = 223

export type NameResult = { ok: true; name: string; format: 'iqn' | 'eui' | 'naa' } | { ok: false; reason: string }

// Letters and digits in any script, plus the three allowed punctuation marks.
const ALLOWED = /^[\p{L}\p{N}\-.:]+$/u
const LABEL = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?'
const IQN_RE = new RegExp(`^iqn\\.(\\d{4})-(\\d{2})\\.(${LABEL}(?:\\.${LABEL})*)(?::(.*))?$`)

export function parseIscsiName(input: string): NameResult {
  const name = input.normalize('NFKC').toLowerCase()
  const show = JSON.stringify(input)
  if (name.length === 0) return { ok: false, reason: 'must not be empty' }
  if (Buffer.byteLength(name, 'utf8') > MAX_ISCSI_NAME_BYTES)
    return { ok: false, reason: `${show} is longer than ${MAX_ISCSI_NAME_BYTES} bytes (RFC 7143 §4.2.7.1)` }
  if (!ALLOWED.test(name)) {
    const bad = [...name].find((ch) => !/[\p{L}\p{N}\-.:]/u.test(ch)) ?? ''
    return {
      ok: false,
      reason: `${show} contains ${JSON.stringify(bad)}: iSCSI names allow only letters, digits, '-', '.' and ':' (RFC 7143 §4.2.7.1)`,
    }
  }
  if (name.startsWith('iqn.')) {
    const m = IQN_RE.exec(name)
    if (!m) {
      return {
        ok: false,
        reason: `${show} is not an iqn name: expected iqn.YYYY-MM.reversed.domain[:identifier], e.g. iqn.2026-11.com.example:disk1 (RFC 7143 §4.2.7.2)`,
      }
    }
    const month = Number(m[2])
    if (month < 1 || month > 12) return { ok: false, reason: `${show}: month ${m[2]} in the iqn date is not 01..12` }
    return { ok: true, name, format: 'iqn' }
  }
  if (name.startsWith('eui.')) {
    if (!/^eui\.[0-9a-f]{16}$/.test(name))
      return { ok: false, reason: `${show} is not an eui name: expected "eui." and 16 hex digits (RFC 7143 §4.2.7.2)` }
    return { ok: true, name, format: 'eui' }
  }
  if (name.startsWith('naa.')) {
    if (!/^naa\.(?:[0-9a-f]{16}|[0-9a-f]{32})$/.test(name))
      return { ok: false, reason: `${show} is not a naa name: expected "naa." and 16 or 32 hex digits (RFC 7143 §4.2.7.2)` }
    return { ok: true, name, format: 'naa' }
  }
  return {
    ok: false,
    reason: `${show} is not an iSCSI name: it must start with "iqn.", "eui." or "naa." (RFC 7143 §4.2.7.2)`,
  }
}
