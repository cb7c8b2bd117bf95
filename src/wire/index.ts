// Public surface of the iSCSI wire codec (RFC 7143 §11). Nothing here touches a socket.

export * from './pdu.js'
export {
  PduParser,
  DEFAULT_MAX_DATA_SEGMENT_LENGTH,
  MAX_DATA_SEGMENT_LENGTH,
  AHS_TYPE_EXTENDED_CDB,
  AHS_TYPE_BIDI_READ_LENGTH,
  type ParserDirection,
  type PduParserOptions,
  type ReceivedPdu,
} from './parser.js'
export {
  encodePdu,
  encodeToBuffer,
  segmentsLength,
  encodeNopOut,
  encodeScsiCommand,
  encodeTaskMgmtRequest,
  encodeLoginRequest,
  encodeTextRequest,
  encodeDataOut,
  encodeLogoutRequest,
  encodeSnack,
  encodeNopIn,
  encodeScsiResponse,
  encodeTaskMgmtResponse,
  encodeLoginResponse,
  encodeTextResponse,
  encodeDataIn,
  encodeLogoutResponse,
  encodeR2T,
  encodeAsyncMessage,
  encodeReject,
  NO_DIGESTS,
  type EncodeOptions,
} from './serializer.js'
export { crc32c, digestOf, writeDigest, readDigest, DIGEST_LENGTH } from './digest.js'
export { encodeLun, decodeLun, lunToBytes, MAX_LUN } from './lun.js'
export {
  WireError,
  FatalFramingError,
  HeaderDigestError,
  SegmentTooLongError,
  DataDigestError,
  UnknownOpcodeError,
  UnexpectedOpcodeError,
  MalformedPduError,
  isWireError,
  type WireErrorCode,
} from './errors.js'
