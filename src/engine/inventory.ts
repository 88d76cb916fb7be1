/** What an owner has applied: enough to find each object again, prune it, and spot drift. */
export interface InventoryEntry {
  /** group/Kind/namespace/name */
  key: string;
  apiVersion: string;
  /** driftFingerprint of the object as the server returned it after plumber's last write. */
  fp: string;
  /** Hash of the manifest as last sent. Equal hash and unchanged fp: the object needs no dry-run. */
  dh?: string;
}
