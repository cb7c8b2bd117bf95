// iscsi:// URLs as libiscsi and QEMU take them: iscsi://[user[%password]@]host[:port]/iqn/lun
export interface IscsiUrl {
  url: string
  host: string
  port: number
  iqn: string
  lun: number
}

export function parseIscsiUrl(text: string): IscsiUrl {
  const m = /^iscsi:\/\/(?:[^@/]+@)?(\[[0-9a-fA-F:.]+\]|[^:/@]+)(?::([0-9]{1,5}))?\/([^/]+)\/([0-9]{1,5})$/.exec(text)
  if (!m) throw new RangeError(`"${text}" is not an iSCSI URL (iscsi://host[:port]/iqn/lun)`)
  const port = m[2] === undefined ? 3260 : Number(m[2])
  if (port < 1 || port > 65535) throw new RangeError(`"${text}": port ${port} is out of range`)
  return { url: text, host: m[1]!, port, iqn: m[3]!, lun: Number(m[4]) }
}

/** A short default label: host:port. */
export function labelOf(u: IscsiUrl): string {
  return `${u.host}:${u.port}`
}
