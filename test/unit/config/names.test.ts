import { describe, expect, it } from 'vitest'
import { parseIscsiName } from '../../../src/config/names.js'
import { formatHostPort, parseAddress } from '../../../src/config/address.js'

describe('parseIscsiName', () => {
  it('accepts the three formats and normalizes case', () => {
    expect(parseIscsiName('iqn.2026-11.io.iscsi-ha:disk1')).toEqual({ ok: true, name: 'iqn.2026-11.io.iscsi-ha:disk1', format: 'iqn' })
    expect(parseIscsiName('iqn.1993-08.org.debian:01:host1').ok).toBe(true)
    expect(parseIscsiName('iqn.2001-04.com.example')).toMatchObject({ ok: true })
    expect(parseIscsiName('IQN.1991-05.com.Microsoft:Host.Example')).toMatchObject({ ok: true, name: 'iqn.1991-05.com.microsoft:host.example' })
    expect(parseIscsiName('eui.02004567A425678D')).toEqual({ ok: true, name: 'eui.02004567a425678d', format: 'eui' })
    expect(parseIscsiName('naa.52004567BA64678D')).toMatchObject({ ok: true, format: 'naa' })
    expect(parseIscsiName('naa.62004567BA64678D0123456789ABCDEF')).toMatchObject({ ok: true, format: 'naa' })
  })
  it('rejects malformed names with a reason', () => {
    const reason = (s: string): string => {
      const r = parseIscsiName(s)
      return r.ok ? '' : r.reason
    }
    expect(reason('iqn.2026.io.x:disk')).toMatch(/not an iqn name/)
    expect(reason('iqn.2026-13.io.x:disk')).toMatch(/month 13/)
    expect(reason('iqn.2026-11.io.x:my disk')).toMatch(/contains " "/)
    expect(reason('iqn.2026-11.io.x:my_disk')).toMatch(/contains "_"/)
    expect(reason('eui.1234')).toMatch(/16 hex digits/)
    expect(reason('naa.123456789012345678')).toMatch(/16 or 32 hex digits/)
    expect(reason('disk1')).toMatch(/must start with "iqn\."/)
    expect(reason('iqn.2026-11.io.x:' + 'a'.repeat(300))).toMatch(/223 bytes/)
  })
})

describe('parseAddress', () => {
  it('parses IPv4, bracketed IPv6 and names', () => {
    expect(parseAddress('127.0.0.1:3260')).toEqual({ ok: true, address: { host: '127.0.0.1', port: 3260, text: '127.0.0.1:3260', family: 4 } })
    expect(parseAddress('[::1]:7360')).toEqual({ ok: true, address: { host: '::1', port: 7360, text: '[::1]:7360', family: 6 } })
    expect(parseAddress('node-a.example:7400')).toMatchObject({ ok: true, address: { host: 'node-a.example', family: 'dns' } })
    expect(parseAddress('10.0.0.5', 3260)).toMatchObject({ ok: true, address: { port: 3260 } })
    expect(parseAddress('[fd00::5]', 3260)).toMatchObject({ ok: true, address: { host: 'fd00::5', port: 3260 } })
  })
  it('rejects bad ports and hosts', () => {
    for (const bad of ['127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1', '::1:3260', '[::1', '[zz::1]:1', '300.1.1.1:80', 'a b:1', ':80']) {
      expect(parseAddress(bad).ok, bad).toBe(false)
    }
  })
  it('formats IPv6 with brackets', () => {
    expect(formatHostPort('::1', 80)).toBe('[::1]:80')
    expect(formatHostPort('127.0.0.1', 80)).toBe('127.0.0.1:80')
  })
})
