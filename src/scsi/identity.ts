// Logical unit identity: what INQUIRY reports so that hosts recognise the same disk through
// either controller of the HA pair and across restarts. Everything here is a pure function of
// the target name and the LUN: no clock, no randomness, no host state.

import { createHash } from 'node:crypto'

/** What the engine reports about a logical unit (standard INQUIRY, VPD 0x80 and 0x83). */
export interface LuIdentity {
  /** T10 vendor identification, at most 8 printable ASCII characters. */
  vendor: string
  /** Product identification, at most 16 printable ASCII characters. */
  product: string
  /** Product revision level, at most 4 printable ASCII characters. */
  revision: string
  /** Unit serial number (VPD 0x80), printable ASCII. */
  serial: string
  /** NAA designator: 16 bytes (NAA 6, IEEE Registered Extended) or 8 bytes (NAA 5, IEEE Registered). */
  naa: Buffer
  /** iSCSI name of the target (SCSI name string designators). */
  targetName: string
  /** Target portal group tag of the port the LU is reached through. */
  tpgt: number
  /** RELATIVE TARGET PORT IDENTIFIER (1..65535); each controller of the pair reports its own. */
  relativeTargetPortId: number
}

export const DEFAULT_VENDOR = 'ISCSI-HA'
export const DEFAULT_PRODUCT = 'VIRTUAL-DISK'
export const DEFAULT_REVISION = '0001'

/** An identity whose vendor, product and revision may be left to the defaults above. */
export type LuIdentityInput = Omit<LuIdentity, 'vendor' | 'product' | 'revision'> &
  Partial<Pick<LuIdentity, 'vendor' | 'product' | 'revision'>>

export function completeIdentity(id: LuIdentityInput): LuIdentity {
  return {
    ...id,
    vendor: id.vendor ?? DEFAULT_VENDOR,
    product: id.product ?? DEFAULT_PRODUCT,
    revision: id.revision ?? DEFAULT_REVISION,
  }
}

export interface DerivedIdentity {
  serial: string
  naa: Buffer
}

export interface DeriveOptions {
  /** 5: 8-byte NAA IEEE Registered; 6 (default): 16-byte NAA IEEE Registered Extended. */
  naaType?: 5 | 6
  /**
   * 24-bit IEEE company identifier placed in the NAA designator. The default, 0x2A4953, has the
   * bit pattern of a locally administered CID; it is not a registered OUI. A deployment that owns
   * an OUI should pass it here.
   */
  companyId?: number
}

export const DEFAULT_COMPANY_ID = 0x2a4953

const SERIAL_RE = /^[\x21-\x7e]{1,64}$/

export class IdentityError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'IdentityError'
  }
}

/**
 * Deterministic identity for LUN `lun` of target `targetIqn` (case-insensitive, as iSCSI names are
 * compared after normalisation). sha256("<iqn lowercased>\0<lun>") supplies the NAA vendor
 * specific bits (bytes 0..12 of the digest) and the serial (bytes 16..23, 16 hex digits).
 */
export function deriveIdentity(
  targetIqn: string,
  lun: number,
  overrideSerial?: string,
  opts: DeriveOptions = {},
): DerivedIdentity {
  if (!Number.isInteger(lun) || lun < 0 || lun > 0x3fff) throw new IdentityError(`LUN ${lun} out of range 0..16383`)
  if (targetIqn.length === 0) throw new IdentityError('target name is empty')
  const companyId = opts.companyId ?? DEFAULT_COMPANY_ID
  if (!Number.isInteger(companyId) || companyId < 0 || companyId > 0xffffff) {
    throw new IdentityError(`company id 0x${companyId.toString(16)} does not fit 24 bits`)
  }
  const digest = createHash('sha256').update(`${targetIqn.toLowerCase()}\0${lun}`, 'utf8').digest()

  let serial: string
  if (overrideSerial !== undefined) {
    if (!SERIAL_RE.test(overrideSerial)) {
      throw new IdentityError(`serial ${JSON.stringify(overrideSerial)} must be 1..64 printable ASCII characters without spaces`)
    }
    serial = overrideSerial
  } else {
    serial = digest.subarray(16, 24).toString('hex').toUpperCase()
  }

  const naaType = opts.naaType ?? 6
  const naa = Buffer.alloc(naaType === 6 ? 16 : 8)
  // NAA (4 bits) | COMPANY_ID (24 bits) | VENDOR SPECIFIC IDENTIFIER (36 bits) [| EXTENSION (64 bits)]
  naa[0] = (naaType << 4) | ((companyId >>> 20) & 0x0f)
  naa[1] = (companyId >>> 12) & 0xff
  naa[2] = (companyId >>> 4) & 0xff
  naa[3] = ((companyId & 0x0f) << 4) | (digest[0] & 0x0f)
  digest.copy(naa, 4, 1, 5)
  if (naaType === 6) digest.copy(naa, 8, 5, 13)
  return { serial, naa }
}

/** Throws IdentityError when an identity cannot be reported as-is. */
export function validateIdentity(id: LuIdentity): void {
  const ascii = (name: string, v: string, max: number): void => {
    if (v.length === 0 || v.length > max || !/^[\x20-\x7e]*$/.test(v)) {
      throw new IdentityError(`${name} ${JSON.stringify(v)} must be 1..${max} printable ASCII characters`)
    }
  }
  ascii('vendor', id.vendor, 8)
  ascii('product', id.product, 16)
  ascii('revision', id.revision, 4)
  if (!SERIAL_RE.test(id.serial)) throw new IdentityError(`serial ${JSON.stringify(id.serial)} is not printable ASCII`)
  if (id.naa.length !== 8 && id.naa.length !== 16) throw new IdentityError('NAA designator must be 8 or 16 bytes')
  const naaType = id.naa[0] >> 4
  if ((id.naa.length === 16) !== (naaType === 6)) throw new IdentityError(`NAA type ${naaType} does not match length ${id.naa.length}`)
  if (id.targetName.length === 0 || Buffer.byteLength(id.targetName) > 223) {
    throw new IdentityError('target name must be 1..223 bytes')
  }
  if (!Number.isInteger(id.tpgt) || id.tpgt < 0 || id.tpgt > 0xffff) throw new IdentityError('tpgt out of range')
  if (!Number.isInteger(id.relativeTargetPortId) || id.relativeTargetPortId < 1 || id.relativeTargetPortId > 0xffff) {
    throw new IdentityError('relative target port identifier must be 1..65535')
  }
}
