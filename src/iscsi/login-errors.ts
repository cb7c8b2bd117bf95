// Login refusals (RFC 7143 §11.13.5). Every class maps to exactly one Status-Class/Status-Detail
// pair, so code that refuses a login picks the class and never spells a number.
//
// Note the RFC values: 0x0209 is "Session type not supported", 0x020b is "Invalid request
// during login"; 0x0301 is "Service unavailable" and 0x0302 is "Out of resources".

/** RFC 7143 §11.13.5 status codes, Status-Class in the high byte, Status-Detail in the low. */
export const LoginStatus = {
  Success: 0x0000,
  TargetMovedTemporarily: 0x0101,
  TargetMovedPermanently: 0x0102,
  InitiatorError: 0x0200,
  AuthenticationFailure: 0x0201,
  AuthorizationFailure: 0x0202,
  NotFound: 0x0203,
  TargetRemoved: 0x0204,
  UnsupportedVersion: 0x0205,
  TooManyConnections: 0x0206,
  MissingParameter: 0x0207,
  CantIncludeInSession: 0x0208,
  SessionTypeNotSupported: 0x0209,
  SessionDoesNotExist: 0x020a,
  InvalidDuringLogin: 0x020b,
  TargetError: 0x0300,
  ServiceUnavailable: 0x0301,
  OutOfResources: 0x0302,
} as const

export type LoginStatusCode = (typeof LoginStatus)[keyof typeof LoginStatus]

/** A reason to refuse a login. `message` is for logs only: it never goes on the wire. */
export abstract class LoginError extends Error {
  abstract readonly status: LoginStatusCode

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }

  get statusClass(): number {
    return this.status >> 8
  }

  get statusDetail(): number {
    return this.status & 0xff
  }
}

/** 0x0200: the initiator broke the login protocol (malformed text, a key sent twice, ...). */
export class InitiatorError extends LoginError {
  readonly status = LoginStatus.InitiatorError
}

/** 0x0201: the initiator could not be authenticated (or refused to authenticate). */
export class AuthenticationError extends LoginError {
  readonly status = LoginStatus.AuthenticationFailure
}

/** 0x0202: authenticated, but not allowed to access this target. */
export class AuthorizationError extends LoginError {
  readonly status = LoginStatus.AuthorizationFailure
}

/** 0x0203: no such target. */
export class TargetNotFoundError extends LoginError {
  readonly status = LoginStatus.NotFound
}

/** 0x0204: the target existed but is gone for good. */
export class TargetRemovedError extends LoginError {
  readonly status = LoginStatus.TargetRemoved
}

/** 0x0205: no version in [Version-min, Version-max] is one we speak. */
export class UnsupportedVersionError extends LoginError {
  readonly status = LoginStatus.UnsupportedVersion
}

/** 0x0206: the session already has as many connections as it may. */
export class TooManyConnectionsError extends LoginError {
  readonly status = LoginStatus.TooManyConnections
}

/** 0x0207: a required key (InitiatorName, TargetName) is missing. */
export class MissingParameterError extends LoginError {
  readonly status = LoginStatus.MissingParameter
}

/** 0x0208: the connection cannot join that session. */
export class CantIncludeInSessionError extends LoginError {
  readonly status = LoginStatus.CantIncludeInSession
}

/** 0x0209: a SessionType we do not support. */
export class SessionTypeNotSupportedError extends LoginError {
  readonly status = LoginStatus.SessionTypeNotSupported
}

/** 0x020a: a non-zero TSIH that names no session. */
export class SessionDoesNotExistError extends LoginError {
  readonly status = LoginStatus.SessionDoesNotExist
}

/** 0x020b: a request that is not valid at this point of the login (bad stage transition, ...). */
export class InvalidDuringLoginError extends LoginError {
  readonly status = LoginStatus.InvalidDuringLogin
}

/** 0x0300: the target failed on its own. */
export class TargetError extends LoginError {
  readonly status = LoginStatus.TargetError
}

/** 0x0301: the service is temporarily unavailable. */
export class ServiceUnavailableError extends LoginError {
  readonly status = LoginStatus.ServiceUnavailable
}

/** 0x0302: no resources for the session or connection. */
export class OutOfResourcesError extends LoginError {
  readonly status = LoginStatus.OutOfResources
}
