// Admin API (HTTP/JSON) server and client, node status types, Prometheus metrics.
export * from './status.js'
export * from './metrics.js'
export * from './server.js'
export * from './client.js'
