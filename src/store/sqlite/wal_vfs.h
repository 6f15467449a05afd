// A thin SQLite VFS over the platform's default one that combines the many
// small writes SQLite makes to a WAL file into one write per commit.
//
// Why: SQLite appends each WAL frame with two write() calls (a 24-byte header,
// then the page). A group commit of 16 creates dirties ~300 index pages, so it
// costs ~600 system calls, and on virtual machines a system call is dear
// (bench/RESULTS.md). Frames are appended contiguously, so they can be held in
// a buffer and written with one pwrite.
//
// Why it is safe: a frame becomes visible to readers only when the writer
// publishes the new WAL-index header, which SQLite does with a memory barrier
// (xShmBarrier) between the header's two copies; the buffer is written out in
// that barrier, on the writer's thread, before the header can be seen. It is
// also written before any read, sync, truncate, size query or close of the WAL
// file, and before any shared-memory lock change. A crash with frames still in
// the buffer loses only a commit that was never published, hence never
// acknowledged: recovery ignores frames the header does not cover.
//
// Thread-safety: registered once per process; each file handle is used by one
// connection (one thread) at a time, as SQLite requires.
#pragma once

namespace rhip::store::sqlite {

// Registers the VFS (once) and returns its name, for sqlite3_open_v2.
const char* CombiningWalVfs();

}  // namespace rhip::store::sqlite
