import { describe, expect, it } from 'vitest'
import { FrameDecoder, PEER_PROTOCOL_VERSION, encodeFrameToBuffer, type Frame, type HandshakeFrame } from '../../../src/peer/codec.js'
import { Handshake, computeProof, type HandshakeOptions, type HandshakeStep } from '../../../src/peer/handshake.js'

const CLUSTER = 'f00d'.repeat(16)
const SECRET = 'correct horse battery staple'

/** Deterministic nonces: 32 copies of `fill`. */
function fixed(fill: number): (n: number) => Buffer {
  return (n) => Buffer.alloc(n, fill)
}

function make(side: 'dialer' | 'acceptor', over: Partial<HandshakeOptions> = {}): Handshake {
  const self = side === 'dialer' ? 'node-a' : 'node-b'
  return new Handshake({
    self,
    peer: self === 'node-a' ? 'node-b' : 'node-a',
    secret: SECRET,
    clusterId: CLUSTER,
    side,
    randomBytes: fixed(side === 'dialer' ? 0xaa : 0xbb),
    ...over,
  })
}

/** Send frames through the real codec (so the wire format is part of the test). */
function wire(frames: HandshakeFrame[]): Frame[] {
  const out: Frame[] = []
  const d = new FrameDecoder({ onFrame: (f) => out.push(f) })
  for (const f of frames) d.push(encodeFrameToBuffer(f))
  return out
}

interface Run {
  d: HandshakeStep
  a: HandshakeStep
  transcript: string[]
}

/** Pump frames between a dialer and an acceptor until both stop talking. */
function run(dialer: Handshake, acceptor: Handshake): Run {
  const transcript: string[] = []
  let toA = dialer.start().send
  let toD = acceptor.start().send
  let d: HandshakeStep = { send: [], status: dialer.status }
  let a: HandshakeStep = { send: [], status: acceptor.status }
  for (let round = 0; round < 10 && (toA.length > 0 || toD.length > 0); round++) {
    const nextToD: HandshakeFrame[] = []
    for (const f of wire(toA)) {
      transcript.push(`D→A ${f.type}`)
      a = acceptor.receive(f)
      nextToD.push(...a.send)
    }
    const nextToA: HandshakeFrame[] = []
    for (const f of wire([...toD, ...nextToD])) {
      transcript.push(`A→D ${f.type}`)
      d = dialer.receive(f)
      nextToA.push(...d.send)
    }
    toA = nextToA
    toD = []
  }
  return { d, a, transcript }
}

describe('peer handshake', () => {
  it('authenticates both ways in HELLO → HELLO+PROOF → PROOF → ACCEPT', () => {
    const dialer = make('dialer')
    const acceptor = make('acceptor')
    const r = run(dialer, acceptor)
    expect(r.transcript).toEqual(['D→A hello', 'A→D hello', 'A→D proof', 'D→A proof', 'A→D accept'])
    expect(dialer.status).toBe('done')
    expect(acceptor.status).toBe('done')
    expect(dialer.peerName).toBe('node-b')
    expect(acceptor.peerName).toBe('node-a')
    expect(acceptor.peerNonce).toEqual(Buffer.alloc(32, 0xaa))
  })

  it('works with the other node dialling', () => {
    const dialer = make('dialer', { self: 'node-b', peer: 'node-a', randomBytes: fixed(1) })
    const acceptor = make('acceptor', { self: 'node-a', peer: 'node-b', randomBytes: fixed(2) })
    run(dialer, acceptor)
    expect([dialer.status, acceptor.status]).toEqual(['done', 'done'])
  })

  it('is deterministic with injected nonces, and never sends the secret', () => {
    const dialer = make('dialer')
    const acceptor = make('acceptor')
    const sent: Buffer[] = []
    const hello = dialer.start().send
    sent.push(...hello.map(encodeFrameToBuffer))
    const step = acceptor.receive(hello[0]!)
    sent.push(...step.send.map(encodeFrameToBuffer))
    const proof = step.send[1]
    expect(proof?.type).toBe('proof')
    const expected = computeProof(Buffer.from(SECRET), {
      senderSide: 'acceptor',
      version: PEER_PROTOCOL_VERSION,
      senderNonce: Buffer.alloc(32, 0xbb),
      receiverNonce: Buffer.alloc(32, 0xaa),
      senderName: 'node-b',
      receiverName: 'node-a',
      clusterId: CLUSTER,
    })
    expect(proof?.type === 'proof' && proof.proof).toEqual(expected)
    for (const b of sent) expect(b.includes(Buffer.from(SECRET))).toBe(false)
  })

  it('wrong secret: the dialer refuses the acceptor’s proof; the acceptor sees REFUSE', () => {
    const dialer = make('dialer', { secret: 'not the secret' })
    const acceptor = make('acceptor')
    const r = run(dialer, acceptor)
    expect(r.d.refusal).toMatchObject({ reason: 'bad-secret', by: 'us' })
    expect(r.a.refusal).toMatchObject({ reason: 'bad-secret', by: 'peer' })
    expect(r.transcript.at(-1)).toBe('D→A refuse')
  })

  it('wrong secret: an impostor that sends a proof anyway is refused by the acceptor', () => {
    const acceptor = make('acceptor')
    const impostor = make('dialer', { secret: 'guess' })
    const hello = impostor.start().send[0]!
    const reply = acceptor.receive(hello)
    expect(reply.status).toBe('pending')
    const forged = computeProof(Buffer.from('guess'), {
      senderSide: 'dialer',
      version: PEER_PROTOCOL_VERSION,
      senderNonce: impostor.nonce,
      receiverNonce: acceptor.nonce,
      senderName: 'node-a',
      receiverName: 'node-b',
      clusterId: CLUSTER,
    })
    const step = acceptor.receive({ type: 'proof', proof: forged })
    expect(step.status).toBe('refused')
    expect(step.send).toEqual([{ type: 'refuse', reason: 'bad-secret', detail: expect.stringMatching(/peer_secret/) }])
  })

  it('another cluster’s config is refused before anything is revealed', () => {
    const dialer = make('dialer', { clusterId: 'beef'.repeat(16) })
    const acceptor = make('acceptor')
    const step = acceptor.receive(dialer.start().send[0]!)
    expect(step.status).toBe('refused')
    expect(step.send).toHaveLength(1) // only REFUSE: no HELLO, no proof
    expect(step.refusal).toMatchObject({ reason: 'cluster-mismatch', by: 'us' })
    expect(step.refusal!.detail).toMatch(/another cluster/)
  })

  it('an unsupported version is refused', () => {
    const r = run(make('dialer', { version: PEER_PROTOCOL_VERSION + 1 }), make('acceptor'))
    expect(r.a.refusal).toMatchObject({ reason: 'unsupported-version', by: 'us' })
    expect(r.d.refusal).toMatchObject({ reason: 'unsupported-version', by: 'peer' })
  })

  it('a stranger name is refused (acceptor side and dialer side)', () => {
    const r = run(make('dialer', { self: 'mallory' }), make('acceptor'))
    expect(r.a.refusal).toMatchObject({ reason: 'unknown-node' })
    expect(r.a.refusal!.detail).toMatch(/'mallory' is not the configured peer 'node-a'/)
    // The dialer reaches something that answers with another node's name.
    const r2 = run(make('dialer'), make('acceptor', { self: 'node-c', peer: 'node-a' }))
    expect(r2.d.refusal).toMatchObject({ reason: 'unknown-node', by: 'us' })
  })

  it('a peer claiming our own name is refused', () => {
    const r = run(make('dialer', { self: 'node-b', peer: 'node-a' }), make('acceptor'))
    expect(r.a.refusal).toMatchObject({ reason: 'own-name' })
  })

  it('reflection: our own nonce sent back is refused, also across connections', () => {
    const acceptor = make('acceptor')
    const mirrored = { type: 'hello', version: PEER_PROTOCOL_VERSION, clusterId: CLUSTER, nodeName: 'node-a', nonce: acceptor.nonce } as const
    expect(acceptor.receive(mirrored).refusal).toMatchObject({ reason: 'reflected-nonce' })

    // Our dialer's nonce replayed as the HELLO of a connection we accept.
    const live = new Set<string>()
    const ourDial = make('dialer', { self: 'node-b', peer: 'node-a', nonces: live, randomBytes: fixed(7) })
    const ourAccept = make('acceptor', { nonces: live, randomBytes: fixed(8) })
    const hello = { type: 'hello', version: PEER_PROTOCOL_VERSION, clusterId: CLUSTER, nodeName: 'node-a', nonce: ourDial.nonce } as const
    expect(ourAccept.receive(hello).refusal).toMatchObject({ reason: 'reflected-nonce' })
    ourDial.dispose()
    expect(live.size).toBe(0)
  })

  it('reflection: a proof sent back to its author does not verify', () => {
    // The attacker dials node-b as "node-a" and gets node-b's acceptor proof ...
    const victim = make('acceptor')
    const attackerNonce = Buffer.alloc(32, 0x11)
    const reply = victim.receive({ type: 'hello', version: PEER_PROTOCOL_VERSION, clusterId: CLUSTER, nodeName: 'node-a', nonce: attackerNonce })
    const victimProof = reply.send[1]
    expect(victimProof?.type).toBe('proof')
    // ... and hands it straight back as the dialer's proof.
    const step = victim.receive(victimProof!)
    expect(step.refusal).toMatchObject({ reason: 'bad-secret' })
  })

  it('a proof from an earlier session does not verify in a new one', () => {
    const first = run(make('dialer'), make('acceptor'))
    expect(first.a.status).toBe('done')
    const old = make('dialer')
    const acceptor = make('acceptor', { randomBytes: fixed(0xcc) })
    acceptor.receive(old.start().send[0]!)
    const stale = computeProof(Buffer.from(SECRET), {
      senderSide: 'dialer',
      version: PEER_PROTOCOL_VERSION,
      senderNonce: Buffer.alloc(32, 0xaa),
      receiverNonce: Buffer.alloc(32, 0xbb), // the old acceptor nonce
      senderName: 'node-a',
      receiverName: 'node-b',
      clusterId: CLUSTER,
    })
    expect(acceptor.receive({ type: 'proof', proof: stale }).refusal).toMatchObject({ reason: 'bad-secret' })
  })

  it('frames out of order are a protocol refusal; a peer REFUSE ends the handshake', () => {
    const acceptor = make('acceptor')
    acceptor.start()
    expect(acceptor.receive({ type: 'proof', proof: Buffer.alloc(32) }).refusal).toMatchObject({ reason: 'protocol' })
    expect(acceptor.receive({ type: 'accept' })).toEqual({
      send: [],
      status: 'refused',
      refusal: expect.objectContaining({ reason: 'protocol' }),
    })
    const dialer = make('dialer')
    dialer.start()
    expect(dialer.receive({ type: 'heartbeat', epoch: 1, role: 'primary', sentAtMs: 0, journalEntries: 0 }).refusal).toMatchObject({
      reason: 'protocol',
    })
    const d2 = make('dialer')
    d2.start()
    expect(d2.receive({ type: 'refuse', reason: 'too-many-connections', detail: '' })).toMatchObject({
      status: 'refused',
      refusal: { reason: 'too-many-connections', by: 'peer' },
    })
  })

  it('refuse() produces a REFUSE frame for failures found outside the handshake', () => {
    const acceptor = make('acceptor')
    acceptor.start()
    const step = acceptor.refuse('not-peer-protocol', 'bad magic', 'this port speaks the peer-link protocol')
    expect(step.send).toEqual([{ type: 'refuse', reason: 'not-peer-protocol', detail: 'this port speaks the peer-link protocol' }])
    expect(acceptor.refuse('protocol', 'again').send).toEqual([])
  })

  it('rejects a bad configuration at construction', () => {
    expect(() => make('dialer', { peer: 'node-a' })).toThrow(RangeError)
    expect(() => make('dialer', { secret: '' })).toThrow(TypeError)
    expect(() => make('dialer', { randomBytes: () => Buffer.alloc(3) })).toThrow(RangeError)
  })
})
