// A small but real iSCSI initiator (RFC 7143): test equipment for the target, and the engine of
// `iscsi-ha bench` and the failover tests.

export {
  IscsiInitiatorConnection,
  randomIsid,
  type InitiatorConnectionOptions,
  type ScsiCallOptions,
  type IoOptions,
  type DiscoveredTarget,
  type InitiatorStats,
  type RejectEvent,
} from './connection.js'
export {
  InitiatorLogin,
  loginStatusName,
  type LoginOptions,
  type LoginStep,
  type LoginProgress,
  type NegotiatedParams,
  type ChapCredentials,
  type DigestOffer,
  type Pairs,
} from './login.js'
export { DataInAssembler, type DataInSegment } from './data-in.js'
export { CommandWindow } from './window.js'
export * from './scsi.js'
export * from './errors.js'
export { VerifyingHost, type VerifyingHostOptions, type VerifyReport, type HostEvent } from './verifying-host.js'
