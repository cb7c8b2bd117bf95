import { ScsiStatus, type ScsiResult } from '../types.js'

/** Shared, frozen GOOD result without data (the transport must not mutate results). */
export const GOOD: ScsiResult = Object.freeze({ status: ScsiStatus.Good })

export function goodWithData(dataIn: Buffer): ScsiResult {
  return { status: ScsiStatus.Good, dataIn }
}
