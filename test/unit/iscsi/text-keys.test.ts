import { describe, expect, it } from 'vitest'
import { TextKeyError, encodeTextKeys, parseTextKeys } from '../../../src/iscsi/text-keys.js'

/** Raw segment from a literal, with \0 as the separator (built by hand, not by the encoder). */
const raw = (s: string): Buffer => Buffer.from(s, 'utf8')

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e) {
    if (e instanceof TextKeyError) return e.code
    throw e
  }
  return undefined
}

describe('parseTextKeys', () => {
  it('parses pairs in order and keeps duplicates for the negotiator to judge', () => {
    expect(parseTextKeys(raw('InitiatorName=iqn.a\0SessionType=Normal\0InitiatorName=iqn.b\0'))).toEqual([
      ['InitiatorName', 'iqn.a'],
      ['SessionType', 'Normal'],
      ['InitiatorName', 'iqn.b'],
    ])
  })

  it('splits on the first "=" only and accepts empty values', () => {
    expect(parseTextKeys(raw('X-a=b=c\0SendTargets=\0'))).toEqual([
      ['X-a', 'b=c'],
      ['SendTargets', ''],
    ])
  })

  it('returns nothing for an empty segment or one of padding only', () => {
    expect(parseTextKeys(Buffer.alloc(0))).toEqual([])
    expect(parseTextKeys(Buffer.alloc(4))).toEqual([])
  })

  it('tolerates trailing padding zeros', () => {
    expect(parseTextKeys(raw('A=1\0\0\0\0'))).toEqual([['A', '1']])
  })

  it('refuses text after the padding', () => {
    expect(codeOf(() => parseTextKeys(raw('A=1\0\0B=2\0')))).toBe('junk-after-padding')
  })

  it('refuses a final pair without its NUL', () => {
    expect(codeOf(() => parseTextKeys(raw('A=1\0B=2')))).toBe('unterminated')
  })

  it('refuses a pair without "="', () => {
    expect(codeOf(() => parseTextKeys(raw('A=1\0JustAKey\0')))).toBe('missing-equals')
  })

  it('refuses an empty key', () => {
    expect(codeOf(() => parseTextKeys(raw('=value\0')))).toBe('empty-key')
  })

  it('limits keys to 63 bytes', () => {
    const k63 = `K${'a'.repeat(62)}`
    expect(parseTextKeys(raw(`${k63}=v\0`))).toEqual([[k63, 'v']])
    expect(codeOf(() => parseTextKeys(raw(`${k63}b=v\0`)))).toBe('key-too-long')
  })

  it('limits values to 8192 bytes', () => {
    const v = 'x'.repeat(8192)
    expect(parseTextKeys(raw(`CHAP_C=${v}\0`))[0]?.[1]).toHaveLength(8192)
    expect(codeOf(() => parseTextKeys(raw(`CHAP_C=${v}x\0`)))).toBe('value-too-long')
  })

  it('refuses key characters outside the standard-label set', () => {
    expect(codeOf(() => parseTextKeys(raw('Bad Key=1\0')))).toBe('invalid-key')
    expect(codeOf(() => parseTextKeys(raw('Kéy=1\0')))).toBe('invalid-key')
    expect(parseTextKeys(raw('X#NodeArchitecture=a\0X-com.example.k_1+2@3=b\0'))).toHaveLength(2)
  })

  it('decodes UTF-8 values and refuses invalid UTF-8', () => {
    expect(parseTextKeys(raw('InitiatorAlias=Hôte ünïcode\0'))).toEqual([['InitiatorAlias', 'Hôte ünïcode']])
    const bad = Buffer.concat([raw('InitiatorAlias='), Buffer.from([0xc3, 0x28]), Buffer.from([0])])
    expect(codeOf(() => parseTextKeys(bad))).toBe('invalid-utf8')
  })

  it('reports the offset of the offending pair', () => {
    try {
      parseTextKeys(raw('A=1\0B\0'))
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(TextKeyError)
      expect((e as TextKeyError).offset).toBe(4)
    }
  })
})

describe('encodeTextKeys', () => {
  it('writes key=value NUL for each pair, without padding', () => {
    expect(encodeTextKeys([['A', '1'], ['B', '']]).toString('latin1')).toBe('A=1\0B=\0')
    expect(encodeTextKeys([])).toHaveLength(0)
  })

  it('writes UTF-8 and round-trips through the parser', () => {
    const pairs: Array<[string, string]> = [
      ['TargetAlias', 'Disque ñ'],
      ['TargetAddress', '[2001:db8::1]:3260,1'],
    ]
    expect(parseTextKeys(encodeTextKeys(pairs))).toEqual(pairs)
  })

  it('accepts any iterable', () => {
    const m = new Map([['HeaderDigest', 'None']])
    expect(encodeTextKeys(m).toString()).toBe('HeaderDigest=None\0')
  })

  it('refuses what it could not frame', () => {
    expect(codeOf(() => encodeTextKeys([['A=B', '1']]))).toBe('invalid-key')
    expect(codeOf(() => encodeTextKeys([['', '1']]))).toBe('invalid-key')
    expect(codeOf(() => encodeTextKeys([['A', 'x\0y']]))).toBe('invalid-value')
  })
})
