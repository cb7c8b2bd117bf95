// Configuration: load, validate and default the cluster config file.
export { loadConfig } from './load.js'
export {
  parseConfig,
  parseConfigDetailed,
  CHAP_SECRET_MIN_BYTES,
  CHAP_SECRET_MAX_BYTES,
  CHAP_NAME_MAX_BYTES,
  PEER_SECRET_MIN_BYTES,
  MAX_LUN,
  MAX_NODES,
  type ParsedConfig,
  type LunSource,
  type Pos,
} from './parse.js'
export {
  defaultConfig,
  defaultIscsiTuning,
  exampleConfigYaml,
  selectNode,
  pickNode,
  DEFAULT_ISCSI,
  DEFAULT_HA,
  DEFAULT_JOURNAL_BYTES,
  DEFAULT_ADMIN_ADDRESS,
  DEFAULT_PORTAL_ADDRESS,
  DEFAULT_TARGET_IQN,
  DEFAULT_DATA_DIR,
  DEFAULT_LUN_SIZE,
  DEFAULT_TPGT,
  ISCSI_PORT,
} from './defaults.js'
export { ConfigError, formatProblem, isConfigError, type ConfigProblem } from './errors.js'
export { parseSize, formatSize, SIZE_HINT, type SizeResult } from './size.js'
export { parseIscsiName, MAX_ISCSI_NAME_BYTES, type NameResult } from './names.js'
export { parseAddress, formatHostPort, isWildcardHost, type AddressResult } from './address.js'
export type * from './types.js'
