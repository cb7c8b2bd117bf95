// The peer link: frame codec, handshake and the socket edge. See each file's header.

export {
  DEFAULT_MAX_DATA_LENGTH,
  DEFAULT_MAX_FRAME_LENGTH,
  FRAME_HEADER_LENGTH,
  FrameDecoder,
  PEER_PROTOCOL_VERSION,
  encodeFrame,
  encodeFrameToBuffer,
  isControlFrame,
  isPeerMessage,
  messageEpoch,
  type ControlFrame,
  type Frame,
  type FrameDecoderOptions,
  type HandshakeFrame,
} from './codec.js'
export { PeerProtocolError, REFUSE_REASONS, type PeerErrorCode, type RefuseReason } from './errors.js'
export {
  Handshake,
  computeProof,
  type HandshakeOptions,
  type HandshakeSide,
  type HandshakeStep,
  type Refusal,
} from './handshake.js'
export {
  PeerLink,
  PREAUTH_MAX_FRAME,
  type PeerAddress,
  type LinkUpInfo,
  type PeerLinkEvents,
  type PeerLinkOptions,
  type PeerLinkStatus,
  type RefusalInfo,
} from './link.js'
