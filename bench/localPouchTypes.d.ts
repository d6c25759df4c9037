// Minimal declarations for the PouchDB anchor of the local benchmark (the packages ship no types).
declare module 'pouchdb-adapter-leveldb' {
  const plugin: unknown
  export default plugin
}
declare module 'leveldown' {
  const leveldown: unknown
  export default leveldown
}
