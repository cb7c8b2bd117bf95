import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { CHAP_CHALLENGE_BYTES, ChapResponder, chapMd5Response } from '../../../src/iscsi/chap.js'
import { AuthenticationError } from '../../../src/iscsi/login-errors.js'
import { decodeBinary, encodeHex } from '../../../src/iscsi/params.js'

/** Independent RFC 1994 computation: MD5 over identifier byte, secret, challenge. */
function md5(id: number, secret: string, challenge: Buffer): Buffer {
  return createHash('md5').update(Buffer.concat([Buffer.of(id), Buffer.from(secret), challenge])).digest()
}

/** Deterministic "random" bytes: each call returns n bytes counting up from a seed. */
function counter(seed = 0x10): (n: number) => Buffer {
  let next = seed
  return (n) => Buffer.from(Array.from({ length: n }, () => next++ & 0xff))
}

const config = { user: 'alice', secret: 'alice-secret-123' }
const mutual = { ...config, mutualUser: 'target-m', mutualSecret: 'target-secret-456' }

function authError(fn: () => unknown): string {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(AuthenticationError)
    return (e as Error).message
  }
  throw new Error('expected an AuthenticationError')
}

describe('chapMd5Response', () => {
  it('is MD5(id || secret || challenge)', () => {
    const c = Buffer.from('00112233445566778899aabbccddeeff', 'hex')
    expect(chapMd5Response(7, 'secret', c)).toEqual(md5(7, 'secret', c))
    expect(chapMd5Response(7, Buffer.from('secret'), c)).toEqual(md5(7, 'secret', c))
  })
})

describe('decodeBinary (§6.1 binary values)', () => {
  it.each([
    ['0x00ff', '00ff'],
    ['0XABcd', 'abcd'],
    ['0xabc', '0abc'], // odd digit count: implied leading zero nibble
    ['0bAAE=', '0001'],
    ['0BAAEC', '000102'],
  ])('%s', (text, hex) => {
    expect(decodeBinary(text)?.toString('hex')).toBe(hex)
  })

  it.each(['', '0x', '0xzz', '1234', '0b', '0bAA', '0bAAF=', '0b!!!!', 'abcd'])('refuses %j', (text) => {
    expect(decodeBinary(text)).toBeUndefined()
  })

  it('encodes hex constants', () => {
    expect(encodeHex(Buffer.from([0, 1, 0xfe]))).toBe('0x0001fe')
  })
})

describe('ChapResponder', () => {
  it('issues CHAP_A=5, an identifier and a 16-byte challenge from the random source', () => {
    const chap = new ChapResponder(config, counter(0x20))
    expect(chap.challenge('5')).toEqual([
      ['CHAP_A', '5'],
      ['CHAP_I', String(0x20)],
      ['CHAP_C', `0x${Buffer.from(Array.from({ length: 16 }, (_, i) => 0x21 + i)).toString('hex')}`],
    ])
    expect(chap.issued.challenge).toHaveLength(CHAP_CHALLENGE_BYTES)
    expect(chap.state).toBe('await-response')
  })

  it('picks MD5 from a list and refuses lists without it', () => {
    expect(new ChapResponder(config, counter()).challenge('7,6,5')[0]).toEqual(['CHAP_A', '5'])
    expect(new ChapResponder(config, counter()).challenge('0x5')[0]).toEqual(['CHAP_A', '5'])
    authError(() => new ChapResponder(config, counter()).challenge('7,6'))
    authError(() => new ChapResponder(config, counter()).challenge('5,,7'))
  })

  it('verifies a one-way response', () => {
    const chap = new ChapResponder(config, counter())
    chap.challenge('5')
    const { id, challenge } = chap.issued
    expect(chap.verify({ CHAP_N: 'alice', CHAP_R: encodeHex(md5(id, config.secret, challenge)) })).toEqual([])
    expect(chap.state).toBe('done')
    expect(chap.mutual).toBe(false)
  })

  it('refuses a wrong secret, a wrong name, a wrong length and garbage', () => {
    const make = (): ChapResponder => {
      const c = new ChapResponder(config, counter())
      c.challenge('5')
      return c
    }
    let c = make()
    authError(() => c.verify({ CHAP_N: 'alice', CHAP_R: encodeHex(md5(c.issued.id, 'wrong-secret', c.issued.challenge)) }))
    c = make()
    authError(() => c.verify({ CHAP_N: 'bob', CHAP_R: encodeHex(md5(c.issued.id, config.secret, c.issued.challenge)) }))
    c = make()
    expect(authError(() => c.verify({ CHAP_N: 'alice', CHAP_R: '0x0011' }))).toMatch(/2 bytes/)
    c = make()
    authError(() => c.verify({ CHAP_N: 'alice', CHAP_R: 'not-binary' }))
    c = make()
    authError(() => c.verify({ CHAP_N: 'alice' }))
  })

  it('refuses a response before the challenge and a second CHAP_A', () => {
    const c = new ChapResponder(config, counter())
    authError(() => c.verify({ CHAP_N: 'alice', CHAP_R: '0x00' }))
    c.challenge('5')
    authError(() => c.challenge('5'))
  })

  it('answers a mutual challenge with the target credentials', () => {
    const c = new ChapResponder(mutual, counter())
    c.challenge('5')
    const ic = Buffer.from('a5'.repeat(32), 'hex')
    const out = c.verify({
      CHAP_N: 'alice',
      CHAP_R: encodeHex(md5(c.issued.id, mutual.secret, c.issued.challenge)),
      CHAP_I: '77',
      CHAP_C: encodeHex(ic),
    })
    expect(out).toEqual([
      ['CHAP_N', 'target-m'],
      ['CHAP_R', encodeHex(md5(77, mutual.mutualSecret, ic))],
    ])
    expect(c.mutual).toBe(true)
  })

  it('refuses a reflected challenge', () => {
    const c = new ChapResponder(mutual, counter())
    c.challenge('5')
    const { id, challenge } = c.issued
    const msg = authError(() =>
      c.verify({ CHAP_N: 'alice', CHAP_R: encodeHex(md5(id, mutual.secret, challenge)), CHAP_I: String(id), CHAP_C: encodeHex(challenge) }),
    )
    expect(msg).toMatch(/reflect/)
  })
})
