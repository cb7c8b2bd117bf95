import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ConfigError,
  DEFAULT_ISCSI,
  defaultConfig,
  exampleConfigYaml,
  loadConfig,
  parseConfig,
  pickNode,
  selectNode,
  type ClusterConfig,
} from '../../../src/config/index.js'

/** Parses and returns the formatted problem lines (empty when valid). */
function problems(text: string, file = 'disk.yaml'): string[] {
  try {
    parseConfig(text, file)
    return []
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e
    return e.problems.map((p) => `${p.file}:${p.line}: ${p.field}: ${p.message}`)
  }
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (e) {
    if (e instanceof ConfigError) return e
    throw e
  }
  throw new Error('expected a ConfigError')
}

const NODES = `nodes:
  a:
    portal: 127.0.0.1:3260
    admin: 127.0.0.1:7360
`

/** A target block followed by the nodes block; line 1 is `targets:`. */
function withTarget(body: string): string {
  return `targets:\n${body}${NODES}`
}

const FULL = `# a full example
targets:
  - iqn: iqn.2026-11.io.iscsi-ha:disk1
    alias: disk1
    tpgt: 2
    luns:
      - lun: 1
        path: ./data/disk1-b.img
        size: 512MiB
        block_size: 4096
        physical_block_size: 16KiB
        read_only: true
        write_cache: false
        sanitize_overwrite: true
        io: threadpool
        serial: DISK1B
      - lun: 0
        path: /dev/sdz
    chap:
      user: alice
      secret: a-12-char-secret
      mutual_user: target1
      mutual_secret: another-secret-x
    initiators: [iqn.1993-08.org.debian:01:host1, IQN.1991-05.com.microsoft:WIN1]
  - iqn: eui.02004567A425678D
    luns:
      - { lun: 0, path: disk2.img, size: 1G }
nodes:
  a:
    portal: 10.0.0.1:3260
    admin: 127.0.0.1:7360
    peer: 10.0.0.1:7400
  b:
    portal: "[fd00::2]"
    admin: "[::1]:7361"
    peer: 10.0.0.2:7400
service:
  address: 10.0.0.10
  interface: eth0
  prefix: 24
peer_secret: sixteen-byte-secret
iscsi:
  max_recv_data_segment_length: 65536
  max_burst_length: 262144
  first_burst_length: 65536
  max_outstanding_r2t: 4
  immediate_data: false
  initial_r2t: true
  nop_interval_s: 2
  nop_timeout_s: 0.5
  queue_depth: 32
  max_sessions: 8
  max_connections: 16
  header_digest: CRC32C
  data_digest: [crc32c, None]
`

describe('parseConfig: valid files', () => {
  it('parses a full file into typed camelCase config', () => {
    const cfg = parseConfig(FULL, '/etc/iscsi-ha/cluster.yaml')
    expect(cfg.source).toBe('/etc/iscsi-ha/cluster.yaml')
    expect(cfg.targets).toHaveLength(2)
    const [t1, t2] = cfg.targets
    expect(t1).toEqual({
      iqn: 'iqn.2026-11.io.iscsi-ha:disk1',
      alias: 'disk1',
      tpgt: 2,
      luns: [
        { lun: 0, path: '/dev/sdz', blockSize: 512, physicalBlockSize: 512, sanitizeOverwrite: false, readOnly: false, writeCache: true, removable: false, io: 'auto' },
        {
          lun: 1,
          path: '/etc/iscsi-ha/data/disk1-b.img',
          sizeBytes: 512 * 1024 ** 2,
          blockSize: 4096,
          physicalBlockSize: 16384,
          sanitizeOverwrite: true,
          readOnly: true,
          writeCache: false,
          removable: false,
          io: 'threadpool',
          serial: 'DISK1B',
        },
      ],
      chap: { user: 'alice', secret: 'a-12-char-secret', mutualUser: 'target1', mutualSecret: 'another-secret-x' },
      initiators: ['iqn.1993-08.org.debian:01:host1', 'iqn.1991-05.com.microsoft:win1'],
    })
    expect(t2).toEqual({
      iqn: 'eui.02004567a425678d',
      tpgt: 1,
      luns: [{ lun: 0, path: '/etc/iscsi-ha/disk2.img', sizeBytes: 1024 ** 3, blockSize: 512, physicalBlockSize: 512, sanitizeOverwrite: false, readOnly: false, writeCache: true, removable: false, io: 'auto' }],
    })
    expect(cfg.nodes.a).toEqual({
      name: 'a',
      portal: { host: '10.0.0.1', port: 3260, text: '10.0.0.1:3260', family: 4 },
      admin: { host: '127.0.0.1', port: 7360, text: '127.0.0.1:7360', family: 4 },
      peer: { host: '10.0.0.1', port: 7400, text: '10.0.0.1:7400', family: 4 },
    })
    expect(cfg.nodes.b?.portal).toEqual({ host: 'fd00::2', port: 3260, text: '[fd00::2]', family: 6 })
    expect(cfg.service).toEqual({ address: { host: '10.0.0.10', port: 3260, text: '10.0.0.10', family: 4 }, interface: 'eth0', prefix: 24 })
    expect(cfg.peerSecret).toBe('sixteen-byte-secret')
    expect(cfg.iscsi).toEqual({
      maxRecvDataSegmentLength: 65536,
      maxBurstLength: 262144,
      firstBurstLength: 65536,
      maxOutstandingR2T: 4,
      immediateData: false,
      initialR2T: true,
      nopIntervalS: 2,
      nopTimeoutS: 0.5,
      queueDepth: 32,
      maxSessions: 8,
      maxConnections: 16,
      headerDigest: ['CRC32C'],
      dataDigest: ['CRC32C', 'None'],
    })
  })

  it('fills defaults for optional sections and keys', () => {
    const cfg = parseConfig(withTarget('  - iqn: iqn.2026-11.io.iscsi-ha:d\n    luns: [{lun: 0, path: d.img, size: 4096}]\n'), 'rel/x.yaml')
    expect(cfg.iscsi).toEqual(DEFAULT_ISCSI)
    expect(cfg.service).toBeUndefined()
    expect(cfg.peerSecret).toBeUndefined()
    expect(cfg.targets[0]?.luns[0]?.path).toBe(resolve('rel/d.img'))
    expect(cfg.targets[0]?.tpgt).toBe(1)
  })

  it('defaults admin to 127.0.0.1:7360 and portal port to 3260', () => {
    const cfg = parseConfig(
      'targets:\n  - iqn: iqn.2026-11.io.iscsi-ha:d\n    luns: [{lun: 0, path: d.img, size: 1M}]\nnodes:\n  a: {portal: 0.0.0.0}\n',
      'x.yaml',
    )
    expect(cfg.nodes.a?.portal).toMatchObject({ host: '0.0.0.0', port: 3260 })
    expect(cfg.nodes.a?.admin).toMatchObject({ host: '127.0.0.1', port: 7360 })
  })

  it('follows YAML anchors and aliases', () => {
    const text = `targets:
  - iqn: iqn.2026-11.io.iscsi-ha:d1
    chap: &auth { user: alice, secret: a-12-char-secret }
    luns: [{lun: 0, path: d1.img, size: 1M}]
  - iqn: iqn.2026-11.io.iscsi-ha:d2
    chap: *auth
    luns: [{lun: 0, path: d2.img, size: 1M}]
${NODES}`
    const cfg = parseConfig(text, 'x.yaml')
    expect(cfg.targets[1]?.chap).toEqual({ user: 'alice', secret: 'a-12-char-secret' })
  })
})

describe('parseConfig: invalid files name file, line and field', () => {
  it('reports a bad size (the example from the docs)', () => {
    const text = withTarget(`  - iqn: iqn.2026-11.io.iscsi-ha:disk1
    alias: disk1
    luns:
      - lun: 0
        path: ./data/disk1.img
        size: 1GX
`)
    const err = configError(() => parseConfig(text, 'disk.yaml'))
    expect(err.code).toBe('CONFIG_INVALID')
    expect(err.message).toBe('disk.yaml:7: targets[0].luns[0].size: "1GX" is not a size (use e.g. 512MiB, 1GiB, or bytes)')
    expect(err).toMatchObject({ file: 'disk.yaml', line: 7, column: 15, field: 'targets[0].luns[0].size' })
    expect(err.problems).toHaveLength(1)
  })

  it.each([
    ['size not a multiple of the block size', '        size: 1000\n        block_size: 512\n', 7, 'targets[0].luns[0].size', /1000 bytes\) is not a multiple of the block size 512/],
    ['4096 block size', '        size: 6KiB\n        block_size: 4096\n', 7, 'targets[0].luns[0].size', /not a multiple of the block size 4096/],
    ['bad block size', '        size: 1M\n        block_size: 1024\n', 8, 'targets[0].luns[0].block_size', /must be 512 or 4096/],
    ['zero size', '        size: 0\n', 7, 'targets[0].luns[0].size', /must be more than 0/],
    ['read_only not boolean', '        size: 1M\n        read_only: yes\n', 8, 'targets[0].luns[0].read_only', /expected true or false, found the string "yes"/],
    ['misspelt key', '        size: 1M\n        read_olny: true\n', 8, 'targets[0].luns[0].read_olny', /unknown key \(did you mean "read_only"\?\)/],
    ['camelCase key', '        size: 1M\n        blockSize: 4096\n', 8, 'targets[0].luns[0].blockSize', /did you mean "block_size"/],
    ['bad serial', '        size: 1M\n        serial: "has space"\n', 8, 'targets[0].luns[0].serial', /printable ASCII/],
    ['physical block not a power-of-two multiple', '        size: 1M\n        physical_block_size: 3072\n', 8, 'targets[0].luns[0].physical_block_size',
      /must be the block size 512 times a power of two, at most 65536 \(512, 1024, 2048, 4096, 8192, 16384, 32768 or 65536\), found 3072/],
    ['physical block above 64 KiB', '        size: 1M\n        physical_block_size: 128KiB\n', 8, 'targets[0].luns[0].physical_block_size', /at most 65536 .*found 131072/],
    ['physical block below the block size', '        size: 1M\n        block_size: 4096\n        physical_block_size: 512\n', 9,
      'targets[0].luns[0].physical_block_size', /the block size 4096 times a power of two, at most 65536 \(4096, 8192, 16384, 32768 or 65536\), found 512/],
    ['physical block not a size', '        size: 1M\n        physical_block_size: big\n', 8, 'targets[0].luns[0].physical_block_size', /"big" is not a size/],
    ['physical block not a scalar', '        size: 1M\n        physical_block_size: [4096]\n', 8, 'targets[0].luns[0].physical_block_size', /expected the block size 512 times .* found a list/],
    ['sanitize_overwrite not boolean', '        size: 1M\n        sanitize_overwrite: yes\n', 8, 'targets[0].luns[0].sanitize_overwrite', /expected true or false, found the string "yes"/],
    ['sanitize_overwrite a number', '        size: 1M\n        sanitize_overwrite: 1\n', 8, 'targets[0].luns[0].sanitize_overwrite', /expected true or false, found number 1/],
    ['sanitize_overwrite empty', '        size: 1M\n        sanitize_overwrite:\n', 8, 'targets[0].luns[0].sanitize_overwrite', /expected true or false, found nothing/],
    ['misspelt sanitize_overwrite', '        size: 1M\n        sanitize_overwrites: true\n', 8, 'targets[0].luns[0].sanitize_overwrites', /unknown key \(did you mean "sanitize_overwrite"\?\)/],
  ])('%s', (_name, lunTail, line, field, message) => {
    const text = withTarget(`  - iqn: iqn.2026-11.io.iscsi-ha:disk1
    luns:
      - lun: 0
        path: ./disk1.img
${lunTail}`)
    // line 1 targets, 2 iqn, 3 luns, 4 lun, 5 path, 6.. lunTail: the expected lines count from 1.
    const err = configError(() => parseConfig(text, 'disk.yaml'))
    const p = err.problems.find((x) => x.field === field)
    expect(p, err.message).toBeDefined()
    expect(p?.line).toBe(line - 1)
    expect(p?.message).toMatch(message)
  })

  it('physical_block_size: the block size by default; a byte count or a size; block_size × 2^n up to 64 KiB', () => {
    const lun = (tail: string) =>
      parseConfig(withTarget(`  - iqn: iqn.2026-11.io.iscsi-ha:disk1
    luns:
      - lun: 0
        path: ./disk1.img
        size: 1M
${tail}`), 'disk.yaml').targets[0]!.luns[0]!
    expect(lun('').physicalBlockSize).toBe(512)
    expect(lun('        block_size: 4096\n').physicalBlockSize).toBe(4096)
    expect(lun('        physical_block_size: 512\n').physicalBlockSize).toBe(512)
    expect(lun('        physical_block_size: 4096\n').physicalBlockSize).toBe(4096) // 512e
    expect(lun('        physical_block_size: 4KiB\n').physicalBlockSize).toBe(4096)
    expect(lun('        physical_block_size: 16KiB\n').physicalBlockSize).toBe(16384)
    expect(lun('        block_size: 4096\n        physical_block_size: 64KiB\n').physicalBlockSize).toBe(65536)
  })

  it('sanitize_overwrite: false by default; true or false when given', () => {
    const lun = (tail: string) =>
      parseConfig(withTarget(`  - iqn: iqn.2026-11.io.iscsi-ha:disk1
    luns:
      - lun: 0
        path: ./disk1.img
        size: 1M
${tail}`), 'disk.yaml').targets[0]!.luns[0]!
    expect(lun('').sanitizeOverwrite).toBe(false)
    expect(lun('        sanitize_overwrite: true\n').sanitizeOverwrite).toBe(true)
    expect(lun('        sanitize_overwrite: false\n').sanitizeOverwrite).toBe(false)
  })

  it('io: auto by default; auto, inline or threadpool when given; anything else names the field', () => {
    const yaml = (tail: string): string =>
      withTarget(`  - iqn: iqn.2026-11.io.iscsi-ha:disk1
    luns:
      - lun: 0
        path: ./disk1.img
        size: 1M
${tail}`)
    const lun = (tail: string) => parseConfig(yaml(tail), 'disk.yaml').targets[0]!.luns[0]!
    expect(lun('').io).toBe('auto')
    for (const mode of ['auto', 'inline', 'threadpool'] as const) expect(lun(`        io: ${mode}\n`).io).toBe(mode)
    for (const [bad, found] of [['sync', '"sync"'], ['1', 'number 1']] as const) {
      let err: unknown
      try {
        parseConfig(yaml(`        io: ${bad}\n`), 'disk.yaml')
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(ConfigError)
      const p = (err as ConfigError).problems[0]!
      expect(p.field).toBe('targets[0].luns[0].io')
      expect(p.line).toBe(7)
      expect(p.message).toContain(found)
    }
  })

  it('a bad sanitize_overwrite is reported with file, line and field, alongside other problems', () => {
    const text = withTarget(`  - iqn: iqn.2026-11.io.iscsi-ha:disk1
    luns:
      - lun: 0
        path: ./disk1.img
        size: 1M
        sanitize_overwrite: "true"
        read_only: 3
`)
    const err = configError(() => parseConfig(text, 'disk.yaml'))
    expect(err.problems.map((p) => [p.line, p.field])).toEqual([
      [7, 'targets[0].luns[0].sanitize_overwrite'],
      [8, 'targets[0].luns[0].read_only'],
    ])
    expect(err.message).toContain('disk.yaml:7: targets[0].luns[0].sanitize_overwrite: expected true or false, found the string "true"')
  })

  it('an invalid block_size is reported once, not again through physical_block_size', () => {
    const text = withTarget(`  - iqn: iqn.2026-11.io.iscsi-ha:disk1
    luns:
      - lun: 0
        path: ./disk1.img
        size: 1M
        block_size: 1000
        physical_block_size: 4096
`)
    const err = configError(() => parseConfig(text, 'disk.yaml'))
    expect(err.problems.map((p) => p.field)).toEqual(['targets[0].luns[0].block_size'])
  })

  it('reports LUN number range and duplicates', () => {
    const text = withTarget(`  - iqn: iqn.2026-11.io.iscsi-ha:disk1
    luns:
      - lun: 0
        path: a.img
        size: 1M
      - lun: 0
        path: b.img
        size: 1M
      - lun: 16384
        path: c.img
        size: 1M
`)
    expect(problems(text)).toEqual([
      'disk.yaml:7: targets[0].luns[1].lun: LUN 0 is already used by targets[0].luns[0] (line 4)',
      'disk.yaml:10: targets[0].luns[2].lun: 16384 is out of range 0..16383',
    ])
  })

  it('reports duplicate iqns (after case normalization) and shared backing files', () => {
    const text = withTarget(`  - iqn: iqn.2026-11.io.iscsi-ha:disk1
    luns: [{lun: 0, path: a.img, size: 1M}]
  - iqn: IQN.2026-11.io.iscsi-ha:DISK1
    luns: [{lun: 0, path: b.img, size: 1M}]
  - iqn: iqn.2026-11.io.iscsi-ha:disk3
    luns: [{lun: 0, path: ./a.img, size: 1M}]
`)
    expect(problems(text)).toEqual([
      'disk.yaml:4: targets[1].iqn: iqn.2026-11.io.iscsi-ha:disk1 is already used by targets[0] (line 2)',
      `disk.yaml:7: targets[2].luns[0].path: ${resolve('a.img')} is already the backing store of targets[0].luns[0]`,
    ])
  })

  it('reports bad iSCSI names in iqn and initiators', () => {
    const text = withTarget(`  - iqn: iqn.2026-11.io.iscsi-ha:my_disk
    luns: [{lun: 0, path: a.img, size: 1M}]
    initiators:
      - iqn.1993-08.org.debian:01:host1
      - host2
      - iqn.1993-08.org.debian:01:host1
`)
    const lines = problems(text)
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatch(/^disk\.yaml:2: targets\[0\]\.iqn: "iqn\.2026-11\.io\.iscsi-ha:my_disk" contains "_"/)
    expect(lines[1]).toMatch(/^disk\.yaml:6: targets\[0\]\.initiators\[1\]: "host2" is not an iSCSI name/)
    expect(lines[2]).toBe('disk.yaml:7: targets[0].initiators[2]: "iqn.1993-08.org.debian:01:host1" is listed twice')
  })

  it('enforces CHAP rules', () => {
    const chap = (body: string): string[] =>
      problems(withTarget(`  - iqn: iqn.2026-11.io.iscsi-ha:disk1\n    luns: [{lun: 0, path: a.img, size: 1M}]\n    chap:\n${body}`))
    expect(chap('      user: alice\n      secret: elevenchars\n')).toEqual([
      'disk.yaml:6: targets[0].chap.secret: is 11 bytes; CHAP secrets need at least 12 bytes (96 bits, RFC 7143 §12.1.3)',
    ])
    expect(chap('      user: alice\n      secret: twelve-chars\n')).toEqual([])
    expect(chap(`      user: alice\n      secret: ${'x'.repeat(256)}\n`)).toEqual([
      'disk.yaml:6: targets[0].chap.secret: is 256 bytes; at most 255 are allowed',
    ])
    expect(chap('      user: alice\n      secret: 123456789012345\n')[0]).toMatch(/secret: expected a secret string, found number 123456789012345 \(put it in quotes\)/)
    expect(chap('      secret: twelve-chars\n')).toEqual(['disk.yaml:5: targets[0].chap.user: is required'])
    expect(chap('      user: alice\n      secret: twelve-chars\n      mutual_user: tgt\n')).toEqual([
      'disk.yaml:5: targets[0].chap.mutual_secret: is required with mutual_user (mutual CHAP needs both)',
    ])
    expect(chap('      user: alice\n      secret: twelve-chars\n      mutual_user: tgt\n      mutual_secret: twelve-chars\n')).toEqual([
      'disk.yaml:8: targets[0].chap.mutual_secret: must differ from secret (RFC 7143 §12.1.3: a CHAP secret must not be used in both directions)',
    ])
  })

  it('checks node names and addresses', () => {
    const text = `targets:
  - iqn: iqn.2026-11.io.iscsi-ha:d
    luns: [{lun: 0, path: a.img, size: 1M}]
nodes:
  Node_A:
    portal: 127.0.0.1:3260
    admin: 127.0.0.1:99999
  b:
    portal: "::1:3260"
    admin: 127.0.0.1
    peer: 10.1.1.1:7400
    paer: 1
`
    expect(problems(text)).toEqual([
      'disk.yaml:5: nodes.Node_A: node name "Node_A" must match [a-z0-9_-]+ (lower-case letters, digits, \'_\', \'-\')',
      'disk.yaml:7: nodes.Node_A.admin: "127.0.0.1:99999": port 99999 is not in 1..65535',
      'disk.yaml:9: nodes.b.portal: "::1:3260": write IPv6 addresses in brackets, e.g. [::1]:3260',
      'disk.yaml:10: nodes.b.admin: "127.0.0.1" has no port (use host:port or [IPv6]:port)',
      'disk.yaml:12: nodes.b.paer: unknown key (did you mean "peer"?)',
    ])
  })

  it('refuses more than two nodes, clashing addresses, and portal == admin', () => {
    const text = `targets:
  - iqn: iqn.2026-11.io.iscsi-ha:d
    luns: [{lun: 0, path: a.img, size: 1M}]
nodes:
  a: {portal: 10.0.0.1:3260, admin: 10.0.0.1:7360}
  b: {portal: 10.0.0.1:3260}
  c: {portal: 10.0.0.3:3260, admin: 10.0.0.3:3260}
`
    expect(problems(text)).toEqual([
      'disk.yaml:5: nodes: defines 3 nodes; an HA pair has at most 2',
      'disk.yaml:6: nodes.b.portal: 10.0.0.1:3260 is also used by nodes.a.portal',
      'disk.yaml:7: nodes.c.admin: is the same address as the portal (10.0.0.3:3260)',
    ])
  })

  it('checks service, peer_secret and iscsi tuning', () => {
    const text = withTarget(`  - iqn: iqn.2026-11.io.iscsi-ha:d
    luns: [{lun: 0, path: a.img, size: 1M}]
`).concat(`service:
  address: 0.0.0.0:3260
  prefix: 33
peer_secret: short
iscsi:
  max_burst_length: 65536
  first_burst_length: 131072
  max_recv_data_segment_length: 100
  nop_timeout_s: 0
  header_digest: md5
  queue_depth: 1.5
`)
    expect(problems(text)).toEqual([
      'disk.yaml:9: service.address: "0.0.0.0:3260": the service address must be a specific IPv4 or IPv6 address',
      'disk.yaml:10: service.prefix: 33 is out of range 0..32',
      'disk.yaml:11: peer_secret: is 5 bytes; use at least 16',
      'disk.yaml:14: iscsi.first_burst_length: 131072 is larger than max_burst_length 65536 (RFC 7143 §13.14)',
      'disk.yaml:15: iscsi.max_recv_data_segment_length: 100 is out of range 512..16777215',
      'disk.yaml:16: iscsi.nop_timeout_s: expected a number of seconds, more than 0 (at most 86400), found number 0',
      'disk.yaml:17: iscsi.header_digest: expected None or CRC32C (or a list of them, in order of preference), found the string "md5"',
      'disk.yaml:18: iscsi.queue_depth: expected a whole number 1..65535, found number 1.5',
    ])
  })

  it('reports every problem at once, in line order', () => {
    const text = `targets:
  - iqn: not-a-name
    luns:
      - lun: 0
        path: a.img
        size: 1GB0
      - lun: -1
        path: b.img
nodes:
  a:
    portal: 127.0.0.1:3260
    admin: 127.0.0.1:0
extra: true
`
    const err = configError(() => parseConfig(text, 'disk.yaml'))
    expect(err.problems.map((p) => [p.line, p.field])).toEqual([
      [2, 'targets[0].iqn'],
      [6, 'targets[0].luns[0].size'],
      [7, 'targets[0].luns[1].lun'],
      [12, 'nodes.a.admin'],
      [13, 'extra'],
    ])
    expect(err.message.split('\n')[0]).toBe('5 problems in disk.yaml:')
    expect(err.message).toContain('\n  disk.yaml:13: extra: unknown key')
    // the first problem is spread onto the error
    expect(err).toMatchObject({ line: 2, field: 'targets[0].iqn' })
  })

  it('suggests close names for misspelt top-level keys', () => {
    const text = `target:\n  - iqn: iqn.2026-11.io.iscsi-ha:d\n${NODES}iscsi:\n  queue-depth: 4\n  nop_intervall_s: 1\n`
    expect(problems(text)).toEqual([
      'disk.yaml:1: target: unknown key (did you mean "targets"?)',
      'disk.yaml:8: iscsi.queue-depth: unknown key (did you mean "queue_depth"?)',
      'disk.yaml:9: iscsi.nop_intervall_s: unknown key (did you mean "nop_interval_s"?)',
    ])
    expect(problems(withTarget('  - iqn: iqn.2026-11.io.iscsi-ha:d\n    luns: [{lun: 0, path: a.img, size: 1M}]\n').replace('portal: 127.0.0.1:3260', 'portal: 3260'))).toEqual([
      'disk.yaml:6: nodes.a.portal: expected host:port, found a bare number 3260 (e.g. 127.0.0.1:3260)',
    ])
  })

  it('reports missing sections, wrong shapes, empty files and YAML syntax errors', () => {
    expect(problems('')).toEqual(['disk.yaml:1: : the file is empty (it needs targets: and nodes:)'])
    expect(problems('nodes:\n  a: {portal: 127.0.0.1:3260}\n')).toEqual(['disk.yaml:1: targets: is required'])
    expect(problems('targets: {}\nnodes: []\n')).toEqual([
      'disk.yaml:1: targets: expected a list, found a mapping',
      'disk.yaml:2: nodes: expected a mapping of keys, found a list',
    ])
    expect(problems('- 1\n')).toEqual(['disk.yaml:1: : expected a mapping of keys, found a list'])
    const syntax = problems('targets:\n  - iqn: x\n   bad: [\n')
    expect(syntax.length).toBeGreaterThan(0)
    expect(syntax[0]).toMatch(/^disk\.yaml:3: : YAML syntax: /)
    expect(problems('nodes: {}\nnodes: {}\n')[0]).toMatch(/^disk\.yaml:2: : YAML syntax: .*unique/i)
  })
})

describe('defaultConfig / exampleConfigYaml / selectNode', () => {
  it('default: one target, LUN 0 a 1 GiB file under the data dir, node a', () => {
    const cfg = defaultConfig('/var/lib/iscsi-ha')
    expect(cfg.targets).toEqual([
      {
        iqn: 'iqn.2026-11.io.iscsi-ha:default',
        alias: 'default',
        tpgt: 1,
        luns: [{ lun: 0, path: '/var/lib/iscsi-ha/lun0.img', sizeBytes: 1024 ** 3, blockSize: 512, physicalBlockSize: 512, sanitizeOverwrite: false, readOnly: false, writeCache: true, removable: false, io: 'auto' }],
      },
    ])
    expect(cfg.nodes.a?.portal).toMatchObject({ host: '127.0.0.1', port: 3260 })
    expect(cfg.nodes.a?.admin).toMatchObject({ host: '127.0.0.1', port: 7360 })
    expect(cfg.iscsi).toEqual(DEFAULT_ISCSI)
    expect(defaultConfig().targets[0]?.luns[0]?.path).toBe(resolve('iscsi-ha-data/lun0.img'))
  })

  it('the example YAML parses to the default config', () => {
    const parsed = parseConfig(exampleConfigYaml('/srv/data'), '/etc/iscsi-ha.yaml')
    const { source, ...rest } = parsed
    expect(source).toBe('/etc/iscsi-ha.yaml')
    expect(rest).toEqual(defaultConfig('/srv/data'))
  })

  it('selectNode picks the only node, or the named one, or explains the choices', () => {
    const one = defaultConfig()
    expect(selectNode(one)).toBe('a')
    expect(selectNode(one, 'a')).toBe('a')
    expect(pickNode(one).admin.text).toBe('127.0.0.1:7360')
    expect(() => selectNode(one, 'z')).toThrow(/no node named "z" \(choose one of: a\)/)
    const two: ClusterConfig = { ...one, nodes: { ...one.nodes, b: { ...one.nodes.a!, name: 'b' } } }
    expect(() => selectNode(two)).toThrow(/2 nodes are defined \(a, b\): name the one to run as/)
    expect(selectNode(two, 'b')).toBe('b')
    const err = configError(() => selectNode(two, 'c'))
    expect(err.code).toBe('CONFIG_INVALID')
    expect(err.field).toBe('nodes')
  })
})

describe('loadConfig', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'iscsi-ha-config-'))
    await writeFile(join(dir, 'exists.img'), Buffer.alloc(4096))
    await mkdir(join(dir, 'adir'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('loads a file and resolves paths against its directory', async () => {
    const file = join(dir, 'ok.yaml')
    await writeFile(file, withTarget('  - iqn: iqn.2026-11.io.iscsi-ha:d\n    luns:\n      - {lun: 0, path: exists.img}\n      - {lun: 1, path: new.img, size: 1MiB}\n'))
    const cfg = await loadConfig(file)
    expect(cfg.source).toBe(file)
    expect(cfg.targets[0]?.luns.map((l) => l.path)).toEqual([join(dir, 'exists.img'), join(dir, 'new.img')])
    expect(cfg.targets[0]?.luns[0]?.sizeBytes).toBeUndefined()
  })

  it('needs size for a missing file, refuses directories, reports them together', async () => {
    const file = join(dir, 'bad.yaml')
    await writeFile(file, withTarget('  - iqn: iqn.2026-11.io.iscsi-ha:d\n    luns:\n      - lun: 0\n        path: missing.img\n      - lun: 1\n        path: adir\n'))
    const err = await loadConfig(file).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(ConfigError)
    const lines = (err as ConfigError).problems.map((p) => `${p.line}: ${p.field}: ${p.message}`)
    expect(lines).toEqual([
      `4: targets[0].luns[0].size: is required because ${join(dir, 'missing.img')} does not exist yet (e.g. size: 1GiB)`,
      `7: targets[0].luns[1].path: ${join(dir, 'adir')} is a directory`,
    ])
  })

  it('a missing config file is a ConfigError naming the file', async () => {
    const file = join(dir, 'nope.yaml')
    await expect(loadConfig(file)).rejects.toThrow(`${file}: cannot read the config file: no such file`)
    await expect(loadConfig(file)).rejects.toMatchObject({ code: 'CONFIG_INVALID', file })
  })
})

describe('HA settings', () => {
  const base = `targets:
  - iqn: iqn.2026-11.io.iscsi-ha:disk1
    luns:
      - lun: 0
        path: ./d.img
        size: 1MiB
nodes:
  a:
    portal: 127.0.0.1:3260
`
  it('defaults the timings and the journal, and takes a loopback service address without an interface', () => {
    const c = parseConfig(base + 'service:\n  address: 127.0.0.10:3260\n', '/etc/iscsi-ha/pair.yaml')
    expect(c.service).toMatchObject({ address: { host: '127.0.0.10', port: 3260 }, prefix: 32 })
    expect(c.service!.interface).toBeUndefined()
    expect(c.ha).toMatchObject({ heartbeatIntervalMs: 100, deadAfterMs: 400, leaseDurationMs: 600, fenceAfterMs: 360 })
    expect(c.journal.maxBytes).toBe(256 * 1024 * 1024)
  })

  it('resolves the journal dir and lease path against the file, and reads sizes', () => {
    const c = parseConfig(base + 'journal:\n  dir: ./journal\n  max_bytes: 64MiB\nha:\n  lease_path: ./pair.lease\n', '/etc/iscsi-ha/pair.yaml')
    expect(c.journal).toEqual({ maxBytes: 64 * 1024 * 1024, dir: '/etc/iscsi-ha/journal' })
    expect(c.ha.leasePath).toBe('/etc/iscsi-ha/pair.lease')
  })

  it('refuses timings that would let both controllers serve at once', () => {
    expect(() => parseConfig(base + 'ha:\n  lease_duration_ms: 500\n  fence_after_ms: 500\n', 'pair.yaml')).toThrow(
      /pair\.yaml:\d+: ha\.fence_after_ms: 500 must be less than lease_duration_ms 500/,
    )
  })
})
