// The target side of one CHAP exchange (RFC 7143 §12.1.3, RFC 1994), MD5 only (CHAP_A=5):
//
//   I: CHAP_A=<A1,A2,...>                 T: CHAP_A=5 CHAP_I=<id> CHAP_C=<challenge>
//   I: CHAP_N=<user> CHAP_R=<response>    T: (nothing more; or, for mutual CHAP, when the
//      [CHAP_I=<id'> CHAP_C=<challenge'>]       initiator challenged us) CHAP_N CHAP_R
//
// Failures throw AuthenticationError (login status 0x0201); nothing here touches a PDU.

import { createHash, timingSafeEqual } from 'node:crypto'
import { AuthenticationError, TargetError } from './login-errors.js'
import { decodeBinary, encodeHex, parseList, parseNumber, type ChapConfig } from './params.js'

/** CHAP_A value for MD5 (RFC 1994 / IANA PPP authentication algorithms). */
export const CHAP_MD5 = 5
/** Length of our challenges; the hash output length, as §9.2.1 recommends at the least. */
export const CHAP_CHALLENGE_BYTES = 16
/** §12.1.3: CHAP_C (and CHAP_R) binary values are at most 1024 bytes. */
export const MAX_CHAP_BINARY_BYTES = 1024
const MD5_BYTES = 16

/** RFC 1994 §4.1: Response = MD5(Identifier || secret || Challenge). */
export function chapMd5Response(id: number, secret: string | Buffer, challenge: Buffer): Buffer {
  return createHash('md5')
    .update(Buffer.of(id & 0xff))
    .update(typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret)
    .update(challenge)
    .digest()
}

export interface ChapResponseKeys {
  CHAP_N?: string
  CHAP_R?: string
  CHAP_I?: string
  CHAP_C?: string
}

export type ChapState = 'await-algorithm' | 'await-response' | 'done'

export class ChapResponder {
  private stateValue: ChapState = 'await-algorithm'
  private id = 0
  private challengeBytes: Buffer = Buffer.alloc(0)
  private mutualDone = false

  constructor(
    private readonly config: ChapConfig,
    private readonly randomBytes: (n: number) => Buffer,
  ) {}

  get state(): ChapState {
    return this.stateValue
  }

  /** True once the target also proved itself to the initiator. */
  get mutual(): boolean {
    return this.mutualDone
  }

  /** The challenge we issued (after `challenge`), for tests and logs. */
  get issued(): { id: number; challenge: Buffer } {
    return { id: this.id, challenge: Buffer.from(this.challengeBytes) }
  }

  /** Answer CHAP_A: pick MD5 from the initiator's list and issue our challenge (§12.1.3). */
  challenge(algorithms: string): Array<[string, string]> {
    if (this.stateValue !== 'await-algorithm') throw new AuthenticationError('CHAP_A out of sequence')
    const list = parseList(algorithms)
    if (!list) throw new AuthenticationError(`malformed CHAP_A=${algorithms}`)
    // §12.1.3: the target selects one algorithm from the initiator's list; we implement only MD5.
    if (!list.some((a) => parseNumber(a) === CHAP_MD5)) {
      throw new AuthenticationError(`no supported CHAP algorithm in CHAP_A=${algorithms} (need 5, MD5)`)
    }
    const id = this.randomBytes(1)
    const challenge = this.randomBytes(CHAP_CHALLENGE_BYTES)
    if (id.length < 1 || challenge.length !== CHAP_CHALLENGE_BYTES) {
      throw new TargetError('random source returned too few bytes')
    }
    this.id = id.readUInt8(0)
    this.challengeBytes = Buffer.from(challenge)
    this.stateValue = 'await-response'
    return [
      ['CHAP_A', String(CHAP_MD5)],
      ['CHAP_I', String(this.id)],
      ['CHAP_C', encodeHex(this.challengeBytes)],
    ]
  }

  /**
   * Check the initiator's CHAP_N/CHAP_R; when it sent CHAP_I/CHAP_C too, return our own
   * CHAP_N/CHAP_R for mutual authentication. The initiator is verified first, so an
   * unauthenticated peer never gets a response computed with our secret.
   */
  verify(keys: ChapResponseKeys): Array<[string, string]> {
    if (this.stateValue !== 'await-response') throw new AuthenticationError('CHAP response out of sequence')
    const { CHAP_N: name, CHAP_R: responseText, CHAP_I: idText, CHAP_C: challengeText } = keys
    if (name === undefined || responseText === undefined) {
      throw new AuthenticationError('CHAP_N and CHAP_R are both required (§12.1.3)')
    }
    const response = decodeBinary(responseText)
    if (!response) throw new AuthenticationError('CHAP_R is not a hex or base64 constant')
    if (response.length !== MD5_BYTES) {
      throw new AuthenticationError(`CHAP_R is ${response.length} bytes; an MD5 response is ${MD5_BYTES}`)
    }
    const expected = chapMd5Response(this.id, this.config.secret, this.challengeBytes)
    const responseOk = timingSafeEqual(response, expected)
    if (name !== this.config.user || !responseOk) {
      throw new AuthenticationError(`CHAP verification failed for CHAP_N=${name}`)
    }

    const wantsMutual = idText !== undefined || challengeText !== undefined
    const { mutualUser, mutualSecret } = this.config
    if (!wantsMutual) {
      // Our choice: a target configured for mutual CHAP requires the initiator to use it, so a
      // half-configured pair fails loudly instead of silently running one-way.
      if (mutualUser !== undefined || mutualSecret !== undefined) {
        throw new AuthenticationError('mutual CHAP is configured but the initiator did not challenge the target')
      }
      this.stateValue = 'done'
      return []
    }
    if (idText === undefined || challengeText === undefined) {
      throw new AuthenticationError('CHAP_I and CHAP_C must come together (§12.1.3)')
    }
    if (mutualUser === undefined || mutualSecret === undefined) {
      throw new AuthenticationError('the initiator asked for mutual CHAP but no target credentials are configured')
    }
    // §9.2.1: the secret that authenticates an initiator must not authenticate a target.
    if (mutualSecret === this.config.secret) {
      throw new AuthenticationError('mutual CHAP secret equals the initiator secret')
    }
    const id = parseNumber(idText)
    if (id === undefined || id > 255) throw new AuthenticationError(`CHAP_I=${idText} is not 0..255`)
    const challenge = decodeBinary(challengeText)
    if (!challenge || challenge.length > MAX_CHAP_BINARY_BYTES) {
      throw new AuthenticationError('CHAP_C is not a hex or base64 constant of 1..1024 bytes')
    }
    // §12.1.3 / §9.2.1: a challenge equal to ours would make us answer our own challenge
    // (reflection attack); refuse it.
    if (challenge.equals(this.challengeBytes)) {
      throw new AuthenticationError('the initiator reflected the target challenge')
    }
    this.stateValue = 'done'
    this.mutualDone = true
    return [
      ['CHAP_N', mutualUser],
      ['CHAP_R', encodeHex(chapMd5Response(id, mutualSecret, challenge))],
    ]
  }
}
