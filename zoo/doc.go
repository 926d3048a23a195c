// Package zoo is the catalog of released BiT checkpoints and a dependable
// downloader that keeps them in a local cache.
//
// The catalog (Default) lists every checkpoint the BiT authors published at
// DefaultBaseURL: BiT-S and BiT-M for the six released architectures, the
// BiT-M fine-tunes on ILSVRC-2012, BiT-M-R50x1 on CIFAR-10, the distilled
// R50x1 students and their R152x2 teachers, and the 285 VTAB-1k fine-tunes
// (generated from VTABTasks, VTABArchs and VTABRuns). Each Entry names its
// architecture (a model.Arch name), class count, training data, recommended
// resolution and label file. No digests are published upstream, so entries
// pin none; programs can build their own catalog (NewCatalog, With).
//
// Pull brings a checkpoint into the cache (Options.CacheDir, by default
// os.UserCacheDir()/bitrun): the file is fetched to NAME.part with HTTP Range
// resumption across interruptions and restarts (restarting from zero when the
// server ignores the range), an attempt that receives nothing for
// Options.StallTimeout is abandoned and retried with exponential backoff and
// jitter, the SHA-256 is checked, the file is opened as a BiT checkpoint of the
// catalog's architecture and class count, and only then renamed to its final
// path. A corrupt file never sits at the final path. When no digest is pinned
// (Options.SHA256, "NAME@sha256:HEX", or the catalog), the digest of the first
// complete download is recorded in the cache's lock file (LockFileName) and
// later reads and downloads are verified against it. Concurrent pulls of one
// file, in one process or several, are serialised by a file lock: the second
// waits, then finds the file done. Proxies are honoured
// (http.ProxyFromEnvironment), a mirror can replace the base URL for
// air-gapped sites, Import registers a file copied in by hand, and
// Options.Offline guarantees that no connection is opened.
//
// The package never prints: it reports through Options.Progress and
// Options.Logger. Errors wrap the sentinels ErrNotFound, ErrChecksum,
// ErrOffline, ErrNotCached, ErrCheckpoint, ErrName and ErrStalled; HTTP
// failures are *HTTPError values naming the URL and status.
//
// Resource caveats: a download is refused beyond the size the catalog's
// architecture can hold (about 1.25x the float32 payload plus 64 MiB, or the
// exact Entry.Size when known), so a hostile mirror cannot fill the disk; a
// new file is loaded into memory once to check it (up to ~4.5 GB for
// BiT-M-R152x4), and a cached file is re-hashed on every Pull.
package zoo
