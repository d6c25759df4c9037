// Minimal declarations for the PouchDB anchor of the relay benchmark (the packages ship no types).
declare module 'pouchdb-core' {
  const PouchDB: any
  export default PouchDB
}
declare module 'pouchdb-adapter-memory' {
  const plugin: unknown
  export default plugin
}
declare module 'pouchdb-adapter-http' {
  const plugin: unknown
  export default plugin
}
declare module 'pouchdb-replication' {
  const plugin: unknown
  export default plugin
}
declare module 'express-pouchdb' {
  const expressPouch: (PouchDB: unknown, options: object) => any
  export default expressPouch
}
declare module 'express' {
  const express: () => any
  export default express
}
