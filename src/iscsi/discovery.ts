// SendTargets (RFC 7143 §13.3): the Full Feature Phase text
// key by which an initiator learns target names and their addresses. Pure: the connection
// layer parses the Text Request, calls this, encodes the pairs and splits the response over
// as many Text Responses as MaxRecvDataSegmentLength requires.

import { Answer, initiatorAllowed, type LoginEnvironment, type SessionParams, type TargetAccess } from './params.js'

/**
 * Answer `SendTargets=<value>` for the given session:
 *
 *   All          → every target this initiator may log in to (Discovery sessions only; a
 *                  Normal session gets Reject);
 *   <iSCSI name> → that target, if it exists and the initiator may log in to it;
 *   (empty)      → the session's own target (Normal sessions; a Discovery session has none,
 *                  so Reject).
 *
 * Each target is a TargetName pair followed by one TargetAddress pair per portal
 * (`address:port,tpgt`, §13.8). Targets the initiator is not on the allow-list of are left
 * out, so discovery reveals nothing the initiator could not log in to. No match → no pairs.
 */
export function answerSendTargets(
  value: string,
  env: Pick<LoginEnvironment, 'findTarget' | 'listTargets'>,
  session: Pick<SessionParams, 'sessionType' | 'initiatorName' | 'targetName' | 'target'>,
): Array<[string, string]> {
  let targets: TargetAccess[]
  if (value === 'All') {
    // §13.3: "All" is for Discovery sessions.
    if (session.sessionType !== 'Discovery') return [['SendTargets', Answer.Reject]]
    targets = env.listTargets()
  } else if (value === '') {
    if (session.sessionType !== 'Normal') return [['SendTargets', Answer.Reject]]
    const own = session.target ?? (session.targetName !== undefined ? env.findTarget(session.targetName) : undefined)
    targets = own ? [own] : []
  } else {
    const one = env.findTarget(value)
    targets = one ? [one] : []
  }

  const pairs: Array<[string, string]> = []
  for (const t of targets) {
    if (!initiatorAllowed(t, session.initiatorName)) continue
    pairs.push(['TargetName', t.iqn])
    for (const portal of t.portals) pairs.push(['TargetAddress', withTpgt(portal, t.tpgt)])
  }
  return pairs
}

/** §13.8: TargetAddress is `domainname[:port][,portal-group-tag]`; add the tag when missing. */
function withTpgt(portal: string, tpgt: number): string {
  return /,\d+$/.test(portal) ? portal : `${portal},${tpgt}`
}
