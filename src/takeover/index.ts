export { ServiceAddress, TakeoverError, type ServiceAddressOptions } from './address.js'
export { gratuitousArp, nudgeHostConnections, type NudgeResult, type ArpOptions } from './announce.js'
