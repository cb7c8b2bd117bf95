// Typed errors of the peer link and the reasons a connection is refused.
//
// Every error the frame decoder raises is a PeerProtocolError with a stable string `code`. All of
// them are fatal for the connection: the decoder enters a failed state (every later push() throws
// the same error again) and the link answers with a REFUSE frame and closes the socket.

export type PeerErrorCode =
  | 'PEER_BAD_MAGIC'
  | 'PEER_BAD_VERSION'
  | 'PEER_BAD_CRC'
  | 'PEER_FRAME_TOO_LONG'
  | 'PEER_MALFORMED'
  | 'PEER_BAD_CHECKSUM'

/**
 * Why a connection was refused. Sent in REFUSE frames, counted in PeerLink.refusals, passed to
 * the `refused` event. Reasons received from a peer are passed through as strings, so a newer
 * peer may use reasons not listed here.
 */
export type RefuseReason =
  /** The peer's proof did not verify: it does not know our peer_secret (or it is an impostor). */
  | 'bad-secret'
  /** The peer belongs to another cluster (its config's cluster identity differs). */
  | 'cluster-mismatch'
  /** The peer speaks another protocol version (HELLO or frame header). */
  | 'unsupported-version'
  /** The peer's node name is not the partner in our configuration. */
  | 'unknown-node'
  /** The peer claims our own node name (a mirrored config, or a reflection). */
  | 'own-name'
  /** The peer sent back one of our own nonces (a reflection attempt). */
  | 'reflected-nonce'
  /** A frame arrived that the handshake or link state does not allow. */
  | 'protocol'
  /** The bytes are not this protocol at all (bad magic: HTTP, TLS, iSCSI, garbage...). */
  | 'not-peer-protocol'
  /** A frame failed its CRC32C. */
  | 'corrupt-frame'
  /** A frame declared a length above the limit. */
  | 'frame-too-long'
  /** A frame's contents could not be decoded. */
  | 'malformed'
  /** A copy's data did not match its JournalEntry checksum. */
  | 'bad-checksum'
  /** The handshake did not complete in time. */
  | 'handshake-timeout'
  /** Too many unauthenticated connections are open at once. */
  | 'too-many-connections'

export const REFUSE_REASONS: readonly RefuseReason[] = [
  'bad-secret',
  'cluster-mismatch',
  'unsupported-version',
  'unknown-node',
  'own-name',
  'reflected-nonce',
  'protocol',
  'not-peer-protocol',
  'corrupt-frame',
  'frame-too-long',
  'malformed',
  'bad-checksum',
  'handshake-timeout',
  'too-many-connections',
]

const REASON_OF_CODE: Record<PeerErrorCode, RefuseReason> = {
  PEER_BAD_MAGIC: 'not-peer-protocol',
  PEER_BAD_VERSION: 'unsupported-version',
  PEER_BAD_CRC: 'corrupt-frame',
  PEER_FRAME_TOO_LONG: 'frame-too-long',
  PEER_MALFORMED: 'malformed',
  PEER_BAD_CHECKSUM: 'bad-checksum',
}

/** A fatal peer-link framing or decoding error. */
export class PeerProtocolError extends Error {
  readonly code: PeerErrorCode
  /** Always true: the connection must be closed. */
  readonly fatal = true
  /** The REFUSE reason the receiver sends before closing. */
  readonly refuseReason: RefuseReason

  constructor(code: PeerErrorCode, message: string) {
    super(message)
    this.name = 'PeerProtocolError'
    this.code = code
    this.refuseReason = REASON_OF_CODE[code]
  }
}

export function isPeerProtocolError(err: unknown): err is PeerProtocolError {
  return err instanceof PeerProtocolError
}
